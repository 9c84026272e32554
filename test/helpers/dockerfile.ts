// The Dockerfile, read with dockerfile-ast: its stages and what each one inherits. Used by the image rehearsal
// (test/image.test.ts) and by the bench, which runs the service with the runtime stage's ENV.
import { readFileSync } from 'node:fs'
import { DockerfileParser, Env, From, type Instruction } from 'dockerfile-ast'

export interface Stage {
  name: string
  /** The FROM image, or the earlier stage this one continues. */
  from: string
  instructions: Instruction[]
}

export function splitStages (instructions: Instruction[]): Stage[] {
  const result: Stage[] = []
  for (const instruction of instructions) {
    if (instruction instanceof From) {
      result.push({ name: instruction.getBuildStage() ?? String(result.length), from: instruction.getImage() ?? '', instructions: [] })
    } else if (result.length > 0) {
      result.at(-1)!.instructions.push(instruction) // ARGs before the first FROM only parameterise the FROMs
    }
  }
  return result
}

export function stageByName (stages: Stage[], name: string): Stage | undefined {
  return stages.find((stage) => stage.name.toLowerCase() === name.toLowerCase())
}

/** ENV of a stage, inherited from the stage it continues. */
export function stageEnv (stages: Stage[], stage: Stage): Record<string, string> {
  const parent = stageByName(stages, stage.from)
  const env: Record<string, string> = parent !== undefined && parent !== stage ? stageEnv(stages, parent) : {}
  for (const instruction of stage.instructions) {
    if (instruction instanceof Env) for (const p of instruction.getProperties()) env[p.getName()] = p.getUnescapedValue() ?? ''
  }
  return env
}

/** The ENV the image runs with: its last stage's. */
export function runtimeEnv (dockerfilePath: string): Record<string, string> {
  const stages = splitStages(DockerfileParser.parse(readFileSync(dockerfilePath, 'utf8')).getInstructions())
  return stageEnv(stages, stages.at(-1)!)
}
