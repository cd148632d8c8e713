// Drives Debian's Roundcube in headless Chromium (playwright-core, /usr/bin/chromium)
// through the steps of issue 9. Env: RC_URL, ALICE, ALICE_PW, BOB, BOB_PW, SHOTS (dir for
// screenshots), ATTACH (file to attach), TAG (distinguishes the plain/TLS runs).
// Prints "STEP <name> ok" per step and exits non-zero with the failing step on error.
'use strict';
const { chromium } = require('playwright-core');
const path = require('path');

const E = process.env;
const TAG = E.TAG || 'starttls';
const SUBJECT = `Grüße aus Köln ✉ ${TAG} ${Date.now() % 100000}`;
const BODY = `Hallo Bob, schöne Grüße — 日本語テキスト (${TAG}).`;
const REPLY = `Danke Alice! Antwort ${TAG}.`;
const FOLDER = `Projekte-${TAG}`;
const T = 30000;
let page, shot = 0, step = '';

async function snap(name) {
  shot += 1;
  await page.screenshot({ path: path.join(E.SHOTS, `${String(shot).padStart(2, '0')}-${TAG}-${name}.png`), fullPage: true });
}

async function run(name, fn) {
  step = name;
  await fn();
  await snap(name);
  console.log(`STEP ${name} ok`);
}

// Polls fn in the page until it returns a truthy value, across navigations (bounded).
async function until(fn, what) {
  const end = Date.now() + T;
  while (Date.now() < end) {
    try {
      const v = await page.evaluate(fn);
      if (v) return v;
    } catch (_) { /* the page is navigating */ }
    await page.waitForTimeout(200);
  }
  throw new Error('timed out waiting for ' + what);
}

async function login(user, pw) {
  await page.goto(E.RC_URL, { timeout: T });
  if (await page.locator('#rcmloginuser').count() === 0) {
    // Logged in: log out through the Logout button (a GET without the token is ignored).
    await page.click('a.logout');
    await until(() => !!document.getElementById('rcmloginuser'), 'the login page after logout');
  }
  await page.fill('#rcmloginuser', user);
  await page.fill('#rcmloginpwd', pw);
  await page.click('#rcmloginsubmit');
  await until(() => document.getElementById('mailboxlist') ||
    (document.getElementById('rcmloginuser') && /Login failed/i.test(document.body.innerText)),
  'the mail view or the login error');
  await page.waitForLoadState('load', { timeout: T });
}

async function openFolder(mbox) {
  await page.goto(E.RC_URL + '?_task=mail&_mbox=' + encodeURIComponent(mbox), { timeout: T });
  await page.waitForSelector('#messagelist', { state: 'attached', timeout: T });
  await page.waitForFunction(() => window.rcmail && !rcmail.busy, null, { timeout: T });
}

// The row of the message with our subject (waits, refreshing the list, bounded).
async function rowOf(subject, present = true) {
  for (let i = 0; i < 20; i++) {
    const n = await page.locator('#messagelist tbody tr', { hasText: subject }).count();
    if ((n > 0) === present) return page.locator('#messagelist tbody tr', { hasText: subject }).first();
    await page.waitForTimeout(500);
    // Reload the folder from the server (a fresh page, as a user pressing F5).
    await page.reload({ timeout: T });
    await page.waitForSelector('#messagelist', { state: 'attached', timeout: T });
    await page.waitForFunction(() => window.rcmail && !rcmail.busy, null, { timeout: T });
  }
  throw new Error(`message "${subject}" ${present ? 'not found' : 'still there'} in the list`);
}

async function uidOf(row) {
  const id = await row.getAttribute('id'); // rcmrow + html_identifier(uid, encoded)
  return page.evaluate(i => rcmail.html_identifier_decode(i.replace(/^rcmrow/, '')), id);
}

// Runs a Roundcube command as its toolbar button does, once the UI is idle and the
// command is enabled (commands are disabled while a preview or list request runs).
async function cmd(name, arg) {
  await page.waitForFunction(n => window.rcmail && !rcmail.busy && rcmail.commands[n], name, { timeout: T });
  await page.evaluate(([n, a]) => rcmail.command(n, a), [name, arg]);
}

// Marks the selected message and waits for the list to show it. On a loaded machine the
// first click can land while Roundcube is still busy with the preview; the command is
// then given again (three tries, each bounded).
async function markAndWait(what, shown, uid) {
  for (let attempt = 1; ; attempt++) {
    await cmd('mark', what);
    try {
      await page.waitForFunction(shown, uid, { timeout: T / 3 });
      return;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

// Selects the message row and gives a command that takes it out of the list (move,
// delete). On a loaded machine the click can land while Roundcube is busy, so the
// selection is checked and the whole step given again (three tries, each bounded).
async function selectAndDo(subject, command, arg) {
  for (let attempt = 1; ; attempt++) {
    const row = await rowOf(subject);
    const uid = await uidOf(row);
    await row.click();
    try {
      await page.waitForFunction(u => rcmail.message_list.get_selection().map(String).includes(String(u)),
        uid, { timeout: T / 3 });
      await cmd(command, arg);
      await page.waitForFunction(u => !rcmail.busy && !rcmail.message_list.rows[u], uid, { timeout: T / 3 });
      return;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

async function send() {
  await page.evaluate(() => rcmail.command('send', {}));
  // Roundcube leaves the compose screen once the message is sent (bounded wait).
  for (let i = 0; i < 150 && page.url().includes('_action=compose'); i++) await page.waitForTimeout(200);
  if (page.url().includes('_action=compose')) {
    const err = await page.locator('#messagestack').innerText().catch(() => '');
    throw new Error('still composing after send: ' + err);
  }
  await page.waitForLoadState('load', { timeout: T });
}

async function main() {
  const browser = await chromium.launch({ executablePath: E.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
  page = await ctx.newPage();
  page.on('dialog', d => d.accept());
  try {
    await run('alice-login', async () => {
      await login(E.ALICE, E.ALICE_PW);
      await page.waitForSelector('#mailboxlist', { timeout: T });
    });
    await run('folder-list-special-use', async () => {
      for (const cls of ['inbox', 'drafts', 'sent', 'junk', 'trash']) {
        const n = await page.locator(`#mailboxlist li.mailbox.${cls}`).count();
        if (n !== 1) throw new Error(`folder list has no special-use folder "${cls}"`);
      }
    });
    await run('compose', async () => {
      await page.goto(E.RC_URL + '?_task=mail&_action=compose', { timeout: T });
      await page.waitForSelector('#compose-subject', { timeout: T });
      const to = page.locator('#compose_to input[type=text], #compose_to textarea').first();
      await to.fill(E.BOB);
      await to.press(',');
      await page.fill('#compose-subject', SUBJECT);
      await page.fill('#composebody', BODY);
      await page.setInputFiles('#uploadform input[type=file], input[type=file][name="_attachments[]"]', E.ATTACH);
      await page.waitForSelector(`#attachment-list li:has-text("${path.basename(E.ATTACH)}")`, { timeout: T });
      await page.waitForFunction(() => !rcmail.busy, null, { timeout: T });
    });
    await run('send', async () => {
      await send();
    });
    await run('alice-sent', async () => {
      await openFolder('Sent');
      await rowOf(SUBJECT);
    });
    await run('wrong-password-refused', async () => {
      await login(E.BOB, 'not-' + E.BOB_PW);
      const msg = page.locator('#messagestack');
      await msg.waitFor({ timeout: T });
      await page.waitForFunction(() => /Login failed/i.test(document.body.innerText), null, { timeout: T });
      if (await page.locator('#rcmloginuser').count() !== 1) throw new Error('not on the login page');
    });
    let uid;
    await run('bob-open', async () => {
      await login(E.BOB, E.BOB_PW);
      await openFolder('INBOX');
      const row = await rowOf(SUBJECT);
      uid = await uidOf(row);
      await page.goto(E.RC_URL + `?_task=mail&_mbox=INBOX&_uid=${uid}&_action=show`, { timeout: T });
      await page.waitForSelector('#messagebody', { timeout: T });
      const text = await page.locator('body').innerText();
      for (const want of [SUBJECT, BODY, path.basename(E.ATTACH)]) {
        if (!text.includes(want)) throw new Error(`opened message lacks "${want}"`);
      }
    });
    await run('reply', async () => {
      await page.goto(E.RC_URL + `?_task=mail&_action=compose&_reply_uid=${uid}&_mbox=INBOX`, { timeout: T });
      await page.waitForSelector('#composebody', { timeout: T });
      const subj = await page.inputValue('#compose-subject');
      if (!subj.startsWith('Re: ')) throw new Error(`reply subject is "${subj}"`);
      const old = await page.inputValue('#composebody');
      await page.fill('#composebody', REPLY + '\n\n' + old);
      await send();
    });
    await run('flag', async () => {
      await openFolder('INBOX');
      const row = await rowOf(SUBJECT);
      await row.click();
      await markAndWait('flagged', u => { const r = rcmail.message_list.rows[u]; return !!r && r.obj.classList.contains('flagged'); }, uid);
    });
    await run('mark-unread', async () => {
      await markAndWait('unread', u => { const r = rcmail.message_list.rows[u]; return !!r && r.obj.classList.contains('unread'); }, uid);
    });
    await run('search-subject', async () => {
      await openFolder('INBOX');
      const q = page.locator('#mailsearchform input[type=text], #mailsearchform').first();
      await q.fill(SUBJECT.split(' ').slice(-2).join(' '));
      await q.press('Enter');
      await page.waitForFunction(() => !rcmail.busy, null, { timeout: T });
      await page.waitForFunction(() => document.querySelectorAll('#messagelist tbody tr').length === 1, null, { timeout: T });
      await rowOf(SUBJECT);
    });
    await run('create-folder', async () => {
      await page.goto(E.RC_URL + '?_task=settings&_action=folders', { timeout: T });
      await page.waitForSelector('#subscription-table', { timeout: T });
      await page.evaluate(() => rcmail.command('create-folder'));
      const frame = page.frameLocator('#preferences-frame');
      await frame.locator('input[name=_name]').fill(FOLDER);
      await page.evaluate(() => { const f = document.getElementById('preferences-frame').contentWindow; f.rcmail.command('save'); });
      await page.waitForSelector(`#subscription-table li:has-text("${FOLDER}")`, { timeout: T });
    });
    await run('move-to-folder', async () => {
      await openFolder('INBOX');
      await selectAndDo(SUBJECT, 'move', FOLDER);
      await rowOf(SUBJECT, false);
      await openFolder(FOLDER);
      await rowOf(SUBJECT);
    });
    await run('delete-to-trash', async () => {
      await selectAndDo(SUBJECT, 'delete');
      await rowOf(SUBJECT, false);
      await openFolder('Trash');
      await rowOf(SUBJECT);
    });
    await run('empty-trash', async () => {
      await cmd('purge');
      // Elastic asks in a dialog: press its main button.
      const btn = page.locator('.ui-dialog-buttonset button.mainaction, .ui-dialog-buttonset button.delete').first();
      await btn.click({ timeout: T });
      await page.waitForFunction(() => !rcmail.busy, null, { timeout: T });
      await openFolder('Trash');
      const n = await page.locator('#messagelist tbody tr.message').count();
      if (n !== 0) throw new Error(`Trash still has ${n} messages`);
    });
    console.log('RC-OK');
  } catch (e) {
    try { await snap('FAILED-' + step.replace(/[^a-z-]/gi, '')); } catch (_) { /* ignore */ }
    console.log(`STEP ${step} FAILED: ${e.message}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

main();
