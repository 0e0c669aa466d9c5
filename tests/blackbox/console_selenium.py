#!/usr/bin/python3
"""Black-box test of the operator web console in headless Chromium (Selenium).

Called by console_test.sh, which starts the server and creates the accounts:

  /usr/bin/python3 console_selenium.py --url http://127.0.0.1:PORT/console/ \
      --marketer alice:PW --approver bob:PW --agent carol:PW --admin root:PW \
      --customer C0000028 --campaign-id selenium-1

Prints one line per check ("ok - ..." / "not ok - ...") and exits 1 if any failed. Every wait is
an explicit WebDriverWait (15 s); nothing depends on sleeping.
"""
import argparse
import json
import os
import sys
import traceback
from datetime import datetime, timedelta

from selenium import webdriver
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

WAIT_S = 15


class Checks:
    def __init__(self):
        self.failed = 0
        self.passed = 0

    def check(self, cond, what, detail=''):
        if cond:
            self.passed += 1
            print('ok - ' + what, flush=True)
        else:
            self.failed += 1
            print('not ok - ' + what + (': ' + detail if detail else ''), flush=True)
        return cond


def parse_account(s):
    if ':' not in s:
        raise argparse.ArgumentTypeError('expected NAME:PASSWORD, got %r' % s)
    name, pw = s.split(':', 1)
    return name, pw


class Console:
    """The console page in one browser, with helpers that wait for what they need."""

    def __init__(self, driver, url):
        self.d = driver
        self.url = url

    def wait(self, cond, what, timeout=WAIT_S):
        try:
            # The page re-renders lists when replies arrive: an element read a moment ago may be gone.
            return WebDriverWait(self.d, timeout, ignored_exceptions=(StaleElementReferenceException, ElementClickInterceptedException)).until(
                lambda d: cond())
        except TimeoutException:
            if callable(what):  # described when it failed, from what the page shows then
                try:
                    what = what()
                except Exception as e:  # noqa: BLE001
                    what = '(%s)' % e
            raise AssertionError('timed out after %d s waiting for %s' % (timeout, what))

    def by_id(self, id_):
        return self.d.find_element(By.ID, id_)

    def displayed(self, id_):
        els = self.d.find_elements(By.ID, id_)
        return bool(els) and els[0].is_displayed()

    def wait_displayed(self, id_, what=None):
        return self.wait(lambda: self.by_id(id_) if self.displayed(id_) else None, what or ('#' + id_ + ' to show'))

    def set_value(self, id_, value):
        el = self.by_id(id_)
        el.clear()
        el.send_keys(value)

    def set_value_js(self, id_, value):
        # For inputs whose typing is locale-dependent (datetime-local).
        self.d.execute_script(
            "var e=document.getElementById(arguments[0]); e.value=arguments[1];"
            "e.dispatchEvent(new Event('input',{bubbles:true})); e.dispatchEvent(new Event('change',{bubbles:true}));",
            id_, value)

    def click(self, id_):
        def try_click():
            els = self.d.find_elements(By.ID, id_)
            if not els or not els[0].is_displayed() or not els[0].is_enabled():
                return False
            self.d.execute_script('arguments[0].scrollIntoView({block: "center"});', els[0])
            els[0].click()
            return True
        self.wait(try_click, '#' + id_ + ' to be clickable')

    # --- session

    def open(self):
        self.d.get(self.url)
        self.wait(lambda: self.displayed('login-view') or self.displayed('app'), 'the login form or the app')

    def logged_in_as(self):
        if not self.displayed('app'):
            return None
        return self.by_id('whoami').get_attribute('data-name')

    def logout(self):
        if self.displayed('app'):
            self.click('logout')
        self.wait(lambda: self.displayed('login-form'), 'the login form after logging out')

    def login(self, name, password):
        self.open()
        if self.displayed('app'):
            self.logout()
        self.wait_displayed('login-form')
        self.set_value('login-name', name)
        self.set_value('login-password', password)
        self.click('login-submit')
        self.wait(lambda: self.logged_in_as() == name or (self.displayed('login-error') and self.by_id('login-error').text),
                  'the app for ' + name)
        if self.logged_in_as() != name:
            raise AssertionError('login as %s failed: %s' % (name, self.by_id('login-error').text))
        # English for the checks below (the language switch is checked on its own).
        if 'active' not in (self.by_id('lang-en').get_attribute('class') or ''):
            self.click('lang-en')

    def goto(self, page):
        self.click('nav-' + page)
        self.wait(lambda: self.displayed('page-' + page), 'page ' + page)

    # --- API calls from the page (same origin, the session cookie goes along)

    def fetch(self, path, body, csrf=True):
        """POSTs `body` to `path` from the page; csrf=True sends the token from api/me."""
        self.d.set_script_timeout(WAIT_S)
        return self.d.execute_async_script("""
            var path = arguments[0], body = arguments[1], withCsrf = arguments[2], done = arguments[arguments.length - 1];
            function post(token) {
              var headers = {'Content-Type': 'application/json'};
              if (token) headers['X-CSRF-Token'] = token;
              return fetch(path, {method: 'POST', headers: headers, body: JSON.stringify(body), credentials: 'same-origin'})
                .then(function (r) { return r.text().then(function (t) {
                  var j = null; try { j = JSON.parse(t); } catch (e) {}
                  done({status: r.status, body: j, text: t.slice(0, 500)});
                }); });
            }
            var start = withCsrf
              ? fetch('api/me', {credentials: 'same-origin'}).then(function (r) { return r.json(); })
                  .then(function (me) { return post(me.csrf || ''); })
              : post('');
            start.catch(function (e) { done({status: -1, error: String(e)}); });
        """, path, body, csrf)

    # --- campaigns

    def campaign_row(self, cid):
        for r in self.d.find_elements(By.CSS_SELECTOR, '#campaign-rows tr[data-test="campaign-row"]'):
            if r.get_attribute('data-id') == cid:
                return r
        return None

    def row_state(self, cid):
        r = self.campaign_row(cid)
        return r.get_attribute('data-state') if r is not None else None

    def wait_row_state(self, cid, state):
        self.wait(lambda: self.row_state(cid) == state,
                  lambda: 'campaign %s listed as %s (listed: %s)' % (cid, state, self.row_state(cid)))

    def detail_state(self, cid):
        if not self.displayed('campaign-detail'):
            return None
        p = self.by_id('campaign-detail')
        if p.get_attribute('data-id') != cid:
            return None
        return p.get_attribute('data-state')

    def open_campaign(self, cid):
        def click_row():
            row = self.campaign_row(cid)
            if row is None:
                return False
            self.d.execute_script('arguments[0].scrollIntoView({block: "center"});', row)
            row.click()
            return True
        self.wait(click_row, 'campaign %s in the list' % cid)
        self.wait(lambda: self.detail_state(cid) is not None, 'the detail panel of ' + cid)

    def transition(self, cid, action_id, to):
        self.click(action_id)
        self.wait(lambda: self.detail_state(cid) == to or (self.displayed('detail-error') and self.by_id('detail-error').text),
                  '%s to go to %s' % (cid, to))
        if self.detail_state(cid) != to:
            raise AssertionError('%s did not go to %s: %s' % (cid, to, self.by_id('detail-error').text))

    def create_campaign(self, cid, name, at):
        self.click('campaign-new')
        self.wait_displayed('campaign-form')
        self.set_value('cf-id', cid)
        self.set_value('cf-name', name)
        self.d.execute_script("document.getElementById('cf-channel').value = 'wechat_push';")
        self.set_value('cf-audience', 'tier in (affluent, private)')
        self.set_value_js('cf-at', at)
        self.set_value('cf-holdout', '0.2')
        self.set_value('cf-categories', '')
        self.click('cf-save')
        self.wait(lambda: not self.displayed('campaign-form') or (self.displayed('cf-error') and self.by_id('cf-error').text),
                  'the campaign form to be saved')
        if self.displayed('campaign-form'):
            raise AssertionError('creating %s failed: %s' % (cid, self.by_id('cf-error').text))
        self.wait_row_state(cid, 'draft')

    def audit_entries(self, cid):
        if self.by_id('audit-table').get_attribute('data-id') != cid:
            return []
        return [{'who': r.get_attribute('data-who'), 'action': r.get_attribute('data-action'),
                 'to': r.get_attribute('data-to')}
                for r in self.d.find_elements(By.CSS_SELECTOR, '#audit-rows tr[data-test="audit-row"]')]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--url', required=True, help='the console, e.g. http://127.0.0.1:8080/console/')
    ap.add_argument('--marketer', required=True, type=parse_account)
    ap.add_argument('--approver', required=True, type=parse_account)
    ap.add_argument('--agent', required=True, type=parse_account)
    ap.add_argument('--admin', required=True, type=parse_account)
    ap.add_argument('--customer', required=True)
    ap.add_argument('--campaign-id', required=True)
    ap.add_argument('--artifacts', default=os.environ.get('CONSOLE_ARTIFACTS', ''),
                    help='a directory for screenshots and the browser log of failed steps')
    ap.add_argument('--show', action='store_true', help='run with a visible browser window')
    args = ap.parse_args()

    marketer, mpw = args.marketer
    approver, apw = args.approver
    agent, gpw = args.agent
    admin, rpw = args.admin
    cid = args.campaign_id
    cid_b = cid + '-b'
    customer = args.customer
    at = (datetime.now() + timedelta(days=30)).strftime('%Y-%m-%dT10:00')

    opts = webdriver.ChromeOptions()
    if not args.show:
        opts.add_argument('--headless=new')
    opts.add_argument('--no-sandbox')
    opts.add_argument('--disable-dev-shm-usage')
    opts.add_argument('--window-size=1400,1000')
    opts.add_argument('--lang=en-US')
    opts.binary_location = '/usr/bin/chromium'
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    try:
        driver = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=opts)
    except WebDriverException as e:
        print('not ok - start headless Chromium: %s' % e.msg, flush=True)
        return 1

    T = Checks()
    c = Console(driver, args.url)

    def step(name, fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every failure is a failed check, then the next step
            T.check(False, name, '%s: %s' % (type(e).__name__, e))
            if not isinstance(e, AssertionError):
                traceback.print_exc(file=sys.stdout)
            if args.artifacts:
                try:
                    os.makedirs(args.artifacts, exist_ok=True)
                    base = os.path.join(args.artifacts, 'console-' + name.split()[0].strip('():'))
                    driver.save_screenshot(base + '.png')
                    print('# screenshot: ' + base + '.png')
                except Exception:  # noqa: BLE001
                    pass

    # a. The login page; a wrong password is refused and no session opens.
    def a():
        c.open()
        if c.displayed('app'):
            c.logout()
        T.check(c.displayed('login-form') and c.displayed('login-name') and c.displayed('login-password'),
                '(a) the login page shows')
        c.set_value('login-name', marketer)
        c.set_value('login-password', mpw + '-wrong')
        c.click('login-submit')
        c.wait(lambda: c.displayed('login-error') and c.by_id('login-error').text.strip(), 'the login error')
        T.check(True, '(a) a wrong password shows an error: ' + c.by_id('login-error').text.strip())
        T.check(c.displayed('login-form') and not c.displayed('app'), '(a) the app stays on the login form')
        r = driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "fetch('api/me', {credentials: 'same-origin'}).then(function (r) { done(r.status); })"
            ".catch(function (e) { done(String(e)); });")
        T.check(r == 401, '(a) no session after the wrong password (api/me is 401)', 'api/me: %r' % (r,))

    step('(a) login page', a)

    # b. The marketer creates the campaign through the form and submits it.
    def b():
        c.login(marketer, mpw)
        T.check(True, '(b) logged in as the marketer ' + marketer)
        T.check(c.by_id('whoami').get_attribute('data-role') == 'marketer', '(b) the header names the role marketer',
                'role: %r' % c.by_id('whoami').get_attribute('data-role'))
        c.goto('campaigns')
        c.create_campaign(cid, '理财提醒 test <script>alert(1)</script>', at)
        T.check(c.row_state(cid) == 'draft', '(b) campaign %s is listed as draft' % cid)
        text = c.wait(lambda: c.campaign_row(cid).text, 'the row of ' + cid)
        T.check('<script>alert(1)</script>' in text and '理财提醒' in text,
                '(b) the name is shown as text (escaped), Chinese included', text)
        c.open_campaign(cid)
        c.transition(cid, 'act-submitted', 'submitted')
        c.wait_row_state(cid, 'submitted')
        T.check(True, '(b) campaign %s submitted (listed as submitted)' % cid)

    step('(b) create and submit', b)

    # c. The marketer may not approve: no button, and the API refuses.
    def c_():
        if c.logged_in_as() != marketer:
            c.login(marketer, mpw)
            c.goto('campaigns')
        c.open_campaign(cid)
        c.wait(lambda: c.by_id('detail-actions').find_elements(By.TAG_NAME, 'button')
               or c.by_id('detail-actions').text, 'the action buttons')
        T.check(not driver.find_elements(By.ID, 'act-approved'), '(c) no approve button for the marketer')
        T.check(bool(driver.find_elements(By.ID, 'act-draft')), '(c) the marketer is offered withdraw')
        r = c.fetch('api/op/campaigns.transition', {'campaign_id': cid, 'to': 'approved'})
        code = ((r.get('body') or {}).get('error') or {}).get('code')
        T.check(r.get('status') == 403 and code == 'forbidden',
                '(c) the API refuses the marketer approving (403 forbidden)', json.dumps(r, ensure_ascii=False))
        c.d.refresh()
        c.wait(lambda: c.displayed('app'), 'the app after a reload')
        c.goto('campaigns')
        c.wait_row_state(cid, 'submitted')
        T.check(True, '(c) the campaign is still submitted')

    step('(c) marketer cannot approve', c_)

    # d. The approver approves and schedules; the audit log names both people.
    def d():
        c.login(approver, apw)
        c.goto('campaigns')
        c.open_campaign(cid)
        T.check(not driver.find_elements(By.ID, 'act-submitted'), '(d) no submit button for a submitted campaign')
        # The dry run before approving: who would receive what, the contact pressure before and after.
        c.click('dryrun-go')
        c.wait_displayed('dryrun-result', 'the dry run result')
        rows = c.wait(lambda: driver.find_elements(By.CSS_SELECTOR, '#dryrun-pressure tr[data-test=pressure-row]'),
                      lambda: 'the pressure rows of the dry run')
        T.check(len(rows) == 4, '(d) the dry run shows the contact pressure before and after, 7 and 30 days (%d rows)'
                % len(rows))
        meta = c.by_id('dryrun-meta').text
        T.check(any(ch.isdigit() for ch in meta), '(d) the dry run shows its audience and sends', meta[:200])
        c.transition(cid, 'act-approved', 'approved')
        T.check(True, '(d) %s approved %s' % (approver, cid))
        c.transition(cid, 'act-scheduled', 'scheduled')
        c.wait_row_state(cid, 'scheduled')
        T.check(True, '(d) %s scheduled %s (listed as scheduled)' % (approver, cid))

        want = [(marketer, 'draft'), (marketer, 'submitted'), (approver, 'approved'), (approver, 'scheduled')]
        c.wait(lambda: all(any(e['who'] == w and e['to'] == s for e in c.audit_entries(cid)) for w, s in want),
               lambda: 'the audit entries %s (have %s)' % (want, c.audit_entries(cid)))
        entries = c.audit_entries(cid)
        T.check(any(e['who'] == marketer and e['action'] == 'create' for e in entries),
                '(d) audit: %s created it' % marketer, str(entries))
        for w, s in want[1:]:
            T.check(any(e['who'] == w and e['to'] == s for e in entries), '(d) audit: %s moved it to %s' % (w, s),
                    str(entries))

    step('(d) approve and schedule', d)

    # e. Maker-checker: whoever wrote a campaign may not approve it.
    def e():
        c.login(approver, apw)
        c.goto('campaigns')
        maker, maker_pw = approver, apw
        if not c.displayed('campaign-new'):
            # The approver role has no campaigns.create: show maker-checker with the admin, who
            # may approve anything except its own campaigns.
            print('# %s (approver) may not create campaigns; maker-checker is shown with %s (admin)' % (approver, admin))
            maker, maker_pw = admin, rpw
            c.login(admin, rpw)
            c.goto('campaigns')
        c.create_campaign(cid_b, 'maker-checker ' + cid_b, at)
        c.open_campaign(cid_b)
        c.transition(cid_b, 'act-submitted', 'submitted')
        T.check(True, '(e) %s created and submitted %s' % (maker, cid_b))
        c.click('act-approved')
        c.wait(lambda: c.displayed('detail-error') and c.by_id('detail-error').text.strip(), 'the maker-checker error')
        msg = c.by_id('detail-error').text.strip()
        low = msg.lower()
        T.check(any(k in low for k in ('maker-checker', 'may not approve', 'cannot approve', 'author', 'wrote')),
                '(e) the page shows the server refusing the author approving: ' + msg, msg)
        c.wait(lambda: c.detail_state(cid_b) == 'submitted', '%s to be shown as submitted' % cid_b)
        c.click('campaign-refresh')
        c.wait_row_state(cid_b, 'submitted')
        r = c.fetch('api/op/campaigns.get', {'campaign_id': cid_b})
        st = ((r.get('body') or {}).get('campaign') or {}).get('state')
        T.check(st == 'submitted', '(e) %s stays submitted' % cid_b, json.dumps(r, ensure_ascii=False)[:300])

    step('(e) maker-checker', e)

    # f. The service agent looks up a customer.
    def f():
        c.login(agent, gpw)
        T.check(c.by_id('whoami').get_attribute('data-role') == 'service_agent', '(f) logged in as the service agent')
        c.goto('lookup')
        c.set_value('lookup-id', customer)
        c.click('lookup-go')
        c.wait(lambda: (c.displayed('lookup-result') and c.by_id('lookup-result').get_attribute('data-customer') == customer)
               or (c.displayed('lookup-error') and c.by_id('lookup-error').text), 'the lookup of ' + customer)
        if not c.displayed('lookup-result'):
            raise AssertionError('lookup failed: ' + c.by_id('lookup-error').text)
        caps = driver.find_elements(By.CSS_SELECTOR, '#caps-table tr[data-test="cap-row"]')
        T.check(len(caps) > 0, '(f) the caps are shown (%d)' % len(caps))
        good = True
        for row in caps:
            vals = []
            for k in ('cap-used', 'cap-limit', 'cap-left'):
                txt = row.find_element(By.CSS_SELECTOR, '[data-test="%s"]' % k).text.replace(',', '')
                try:
                    vals.append(int(txt))
                except ValueError:
                    vals.append(None)
            if None in vals or vals[2] != max(0, vals[1] - vals[0]):
                good = False
                print('#   cap %s: used/limit/left %r' % (row.get_attribute('data-rule'), vals))
        T.check(caps and good, '(f) each cap shows used / limit / left = limit - used')
        decisions = driver.find_elements(By.CSS_SELECTOR, '#last-page tr[data-test="decision-row"]')
        T.check(len(decisions) > 0, '(f) the decisions of the last page are shown (%d)' % len(decisions))
        reasons = [r.text for r in driver.find_elements(By.CSS_SELECTOR, '#last-page [data-test="decision-reasons"]')]
        T.check(any('recall:' in r or 'rank:' in r for r in reasons), '(f) with their reasons (recall:/rank:)',
                str(reasons[:3]))
        mv = driver.find_elements(By.ID, 'model-version')
        T.check(bool(mv) and mv[0].text.strip() not in ('', '—'), '(f) the model version is shown: %s'
                % (mv[0].text.strip() if mv else 'none'))
        if c.displayed('nav-campaigns'):
            c.goto('campaigns')
        T.check(not c.displayed('campaign-new'), '(f) the agent has no create button')
        T.check(not c.displayed('campaign-form'), '(f) the agent does not see the campaign editor')
        T.check(not c.displayed('nav-users'), '(f) the agent has no users page')

    step('(f) customer lookup', f)

    # g. A request without the CSRF header is refused, even with the session cookie.
    def g():
        if c.logged_in_as() != agent:
            c.login(agent, gpw)
        r = c.fetch('api/op/history', {'customer_id': customer}, csrf=False)
        code = ((r.get('body') or {}).get('error') or {}).get('code')
        T.check(r.get('status') == 403 and code == 'forbidden', '(g) no CSRF header: 403 forbidden',
                json.dumps(r, ensure_ascii=False)[:300])
        r = c.fetch('api/op/history', {'customer_id': customer}, csrf=True)
        T.check(r.get('status') == 200, '(g) the same request with the header: 200', 'status %r' % r.get('status'))

    step('(g) CSRF', g)

    # h. Language switch.
    def h():
        if not c.displayed('app'):
            c.login(agent, gpw)
        nav = 'nav-campaigns' if c.displayed('nav-campaigns') else 'nav-lookup'
        want_zh = '营销活动' if nav == 'nav-campaigns' else '客户查询'
        want_en = 'Campaigns' if nav == 'nav-campaigns' else 'Customer lookup'
        c.click('lang-zh')
        c.wait(lambda: c.by_id(nav).text.strip() == want_zh, 'the nav item to read ' + want_zh)
        T.check(True, '(h) Chinese: the nav item reads ' + want_zh)
        T.check(driver.execute_script('return document.documentElement.lang') == 'zh-CN', '(h) <html lang> is zh-CN')
        c.click('lang-en')
        c.wait(lambda: c.by_id(nav).text.strip() == want_en, 'the nav item to read ' + want_en)
        T.check(True, '(h) English again: ' + want_en)

    step('(h) language', h)

    # i. The admin's users page and an operator's audit log.
    def i():
        c.login(admin, rpw)
        c.goto('users')
        want = {marketer: 'marketer', approver: 'approver', agent: 'service_agent', admin: 'admin'}

        def roles():
            return {r.get_attribute('data-name'): r.get_attribute('data-role')
                    for r in driver.find_elements(By.CSS_SELECTOR, '#users-rows tr[data-test="user-row"]')}
        c.wait(lambda: all(n in roles() for n in want), lambda: 'the users %s (have %s)' % (sorted(want), roles()))
        have = c.wait(roles, 'the users')
        for n, role in want.items():
            T.check(have.get(n) == role, '(i) users lists %s as %s' % (n, role), 'role %r' % have.get(n))
        def click_audit():
            for r in driver.find_elements(By.CSS_SELECTOR, '#users-rows tr[data-test="user-row"]'):
                if r.get_attribute('data-name') == agent:
                    btn = r.find_element(By.CSS_SELECTOR, '[data-test="user-audit"]')
                    driver.execute_script('arguments[0].scrollIntoView({block: "center"});', btn)
                    btn.click()
                    return True
            return False
        c.wait(click_audit, 'the audit button of ' + agent)

        def entries():
            if c.by_id('op-audit').get_attribute('data-name') != agent or not c.displayed('op-audit'):
                return []
            return [(r.get_attribute('data-action'), r.find_element(By.CSS_SELECTOR, '[data-test="op-audit-detail"]').text)
                    for r in driver.find_elements(By.CSS_SELECTOR, '#op-audit-rows tr[data-test="op-audit-row"]')]
        c.wait(lambda: any(a == 'login' for a, _ in entries()) and any('lookup' in a and customer in dt for a, dt in entries()),
               lambda: "%s's login and lookup of %s in the audit (have %s)" % (agent, customer, entries()))
        T.check(True, '(i) the audit of %s shows a login' % agent)
        T.check(True, '(i) the audit of %s shows the lookup of %s' % (agent, customer))

        # The contact pressure across the customer base, with its chart.
        c.goto('pressure')
        c.click('pressure-go')
        rows = c.wait(lambda: driver.find_elements(By.CSS_SELECTOR, '#pressure-table tr[data-test=pressure-row]'),
                      'the contact pressure rows')
        T.check(len(rows) == 2, '(i) the contact pressure page counts the last 7 and 30 days (%d rows)' % len(rows))
        T.check(bool(driver.find_elements(By.CSS_SELECTOR, '#pressure-chart svg[data-test=pressure-chart] rect')),
                '(i) and draws the 30 days as bars')

    step('(i) users and audit', i)

    # No JavaScript errors in the browser console (CSP violations included).
    try:
        logs = driver.get_log('browser')
    except Exception:  # noqa: BLE001
        logs = []
    severe = [l for l in logs if l.get('level') == 'SEVERE'
              and 'Failed to load resource' not in l.get('message', '')]
    T.check(not severe, 'no JavaScript or CSP errors in the browser console',
            '; '.join(l.get('message', '') for l in severe[:5]))
    if T.failed:
        for l in logs[-30:]:
            print('# browser %s: %s' % (l.get('level'), l.get('message')))

    driver.quit()
    print('# %d passed, %d failed' % (T.passed, T.failed))
    return 1 if T.failed else 0


if __name__ == '__main__':
    sys.exit(main())
