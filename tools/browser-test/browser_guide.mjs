// Opens Neo4j Browser in Debian's headless Chromium (playwright-core, no browser download), connects,
// runs `:play GUIDE`, clicks the guide's first query into the editor, runs it and waits for TEXT in the
// result pane; saves a screenshot. For tests/test_neo4j_browser.py.
//   node browser_guide.mjs '{"http": ..., "password": ..., "guide": ..., "text": ..., "screenshot": ...}'
import { chromium } from "playwright-core";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const { http, user = "neo4j", password, guide, text, screenshot } = JSON.parse(process.argv[2]);
const context = await chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "netarchive-chromium-")), {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1400, height: 1000 },
});
const step = (name) => process.stderr.write(`browser: ${name}\n`);
const page = context.pages()[0] || (await context.newPage());
try {
  page.setDefaultTimeout(Number(process.env.BROWSER_TIMEOUT || 60000));
  await page.goto(`${http}/browser/`, { waitUntil: "load" });
  step("connect");
  await page.fill('[data-testid="username"]', user);
  await page.fill('[data-testid="password"]', password);
  await page.click('[data-testid="connect"]');
  await page.getByText("You are connected as user", { exact: false }).first().waitFor();
  step(`:play ${guide}`);
  const editor = page.locator('[data-testid="activeEditor"]').first();
  await editor.click();
  await page.keyboard.insertText(`:play ${guide}`);  // typed key by key, autocompletion would edit it
  await page.keyboard.press("Enter");
  const query = page.locator("pre.runnable").first();
  await query.waitFor();
  step("run the guide's first query");
  await query.click();
  await editor.click();
  await page.keyboard.press("Control+Enter");
  await page.getByText(JSON.stringify(text), { exact: true }).first().waitFor();  // a string cell of the result table
  // Close the usage-data banner for the screenshot: its close mark is the banner's last <span>, not a button.
  const banner = page.getByText("To help make Neo4j Browser better").first();
  if (await banner.isVisible()) {
    await banner.locator("xpath=..").locator(":scope > span").last().click();
    await page.mouse.move(700, 995);  // off the frame's buttons that the layout moved under the pointer
  }
  await page.waitForTimeout(500);
  await page.screenshot({ path: screenshot });
  process.stdout.write(JSON.stringify({ ok: true }) + "\n");
} catch (error) {
  await page.screenshot({ path: screenshot.replace(/\.png$/, ".failed.png") });
  throw error;
} finally {
  await context.close();
}
