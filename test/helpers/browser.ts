import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core'
import { projectRoot } from '../../src/config/index.js'

type Test = {
  fullname: string
  passing: () => boolean
  teardown: (fn: () => unknown) => void
}

/** Debian's Chromium (`apt-get install -y chromium`); never a downloaded browser. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Why the browser tests cannot run here, or false when they can. CI sets POND_REQUIRE_BROWSER=1: there a missing
 * Chromium is not skipped, so the launch fails and says why.
 */
export function browserSkipReason (): string | false {
  if (existsSync(CHROMIUM_PATH) || process.env.POND_REQUIRE_BROWSER === '1') return false
  return `Chromium not found at ${CHROMIUM_PATH}: browser tests skipped. ` +
    'Enable them with `apt-get install -y chromium` (or set CHROMIUM_PATH to a Chromium binary).'
}

/** Headless Chromium with the flags this closed network needs; closed at teardown. */
export async function launchChromium (t: Pick<Test, 'teardown'>, { args = [] }: { args?: string[] } = {}): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', ...args
    ],
    timeout: 15_000
  })
  t.teardown(() => browser.close())
  return browser
}

const screenshotsDir = join(projectRoot, '.tap', 'screenshots')

/**
 * A page in a fresh browser context (its own cookie jar). If the test fails, a screenshot of every page of the
 * context is saved under .tap/screenshots before the context closes.
 */
export async function openPage (t: Test, browser: Browser, options: BrowserContextOptions = {}): Promise<Page> {
  const context = await browser.newContext(options)
  // A wait for rendering, not a speed test: on 2 busy cores (three test files at once) the API reference page's 1 MB
  // of script has taken over 5 s to render, so give a loaded machine room, still failing well before Playwright's 30 s.
  context.setDefaultTimeout(15_000)
  // tsx compiles these tests with esbuild's keepNames, which wraps inner functions in __name(); functions passed to
  // page.evaluate() run in the page, where that helper does not exist.
  await context.addInitScript('globalThis.__name = (fn) => fn')
  t.teardown(async () => {
    if (!t.passing()) {
      mkdirSync(screenshotsDir, { recursive: true })
      for (const [index, page] of context.pages().entries()) {
        const path = join(screenshotsDir, `${t.fullname.replace(/[^\w.-]+/g, '_')}-${index}.png`)
        await page.screenshot({ path, fullPage: true }).then(() => console.error(`# screenshot: ${path}`), () => {})
      }
    }
    await context.close()
  })
  return context.newPage()
}

/** Waits until the example page has shown the result of its last action (it sets aria-busy="false"). */
export async function settled (page: Page) {
  await page.locator('body[aria-busy="false"]').waitFor()
}

/** Signs up through the example page's form at `pageUrl`, and waits for the page to show the result. */
export async function signUpOnExamplePage (page: Page, pageUrl: string, { email, password, name = 'Ada' }: { email: string, password: string, name?: string }) {
  await page.goto(pageUrl)
  await settled(page)
  const form = page.locator('#sign-up')
  await form.locator('[name=name]').fill(name)
  await form.locator('[name=email]').fill(email)
  await form.locator('[name=password]').fill(password)
  await form.locator('button').click()
  await settled(page)
}
