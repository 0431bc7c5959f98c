"""The web console in a real browser: headless Chromium driven over WebDriver (selenium).

Walks one story against a running local runner (sandbox, dev clock) as a person would, with
the mouse and keyboard only, and checks what the page shows. Saves screenshots, measures the
first paint and the bytes transferred, and fails on any error in the browser's console log.

    python console.py --base http://127.0.0.1:3000 --story sandbox|group --shots DIR
"""

import argparse
import json
import os
import pathlib
import struct
import sys
import tempfile
import zlib

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

# Targets: first paint against a one-line page's in the same run (a machine's load moves
# both), and the bytes a first visit transfers.
FIRST_PAINT_RATIO = 3
ASSET_BYTES = 200 * 1024
WAIT = 15


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1440,1200", "--lang=en-GB"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


class Page:
    def __init__(self, driver, base, shots):
        self.d, self.base, self.shots = driver, base, pathlib.Path(shots)
        self.shots.mkdir(parents=True, exist_ok=True)

    # ---- finding and waiting ----
    def until(self, what, fn, wait=WAIT):
        try:
            # A live update may replace an element between finding and using it: try again.
            return WebDriverWait(self.d, wait, poll_frequency=0.05,
                                 ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: fn())
        except TimeoutException:
            self.shot(f"timeout-{what.replace(' ', '-')[:40]}")
            raise AssertionError(f"timed out waiting for: {what}")

    def css(self, selector, root=None):
        return (root or self.d).find_elements(By.CSS_SELECTOR, selector)

    def one(self, selector, what=None):
        return self.until(what or selector, lambda: next(iter(self.css(selector)), None))

    def text_of(self, selector):
        return " ".join(e.text for e in self.css(selector))

    def see(self, selector, text, wait=WAIT):
        """Waits until an element matching selector shows text."""
        return self.until(f"{text!r} in {selector}",
                          lambda: next((e for e in self.css(selector) if text in e.text), None), wait)

    def button(self, text, within="body"):
        return self.until(f"button {text!r}", lambda: next(
            (b for b in self.css(f"{within} button") if b.text.strip() == text and b.is_enabled()), None))

    def press(self, what, candidates):
        """Clicks the first of candidates() once there is one (found again if it went stale)."""
        def go():
            found = candidates()
            if not found:
                return False
            found[0].click()
            return True
        self.until(what, go)

    def click(self, text, within="body"):
        """Clicks a button by its text (found again if a live update replaced it)."""
        def go():
            self.button(text, within).click()
            return True
        self.until(f"click {text!r}", go)

    def labelled(self, label, within="body"):
        """The control a <label> names: how a screen reader finds it."""
        def find():
            for lab in self.css(f"{within} label"):
                if lab.text.strip() == label and lab.get_attribute("for"):
                    return self.d.find_element(By.ID, lab.get_attribute("for"))
            return None
        return self.until(f"field labelled {label!r}", find)

    def type_into(self, label, text, within="body"):
        def go():
            field = self.labelled(label, within)
            field.clear()
            field.send_keys(text)
            return field
        return self.until(f"typing into {label!r}", go)

    def shot(self, name):
        path = self.shots / f"{name}.png"
        self.d.save_screenshot(str(path))
        return path

    # ---- what a person does ----
    def sign_in(self, sub, name, locale="en", agent=False, admin=False):
        if not self.css("#signin:not([hidden])"):
            self.click(self.d.execute_script("return t('switch_user')"))
        self.one("#signin:not([hidden])")
        self.type_into("User id", sub, "#signin")
        self.type_into("Name", name, "#signin")
        select = self.labelled("Language", "#signin")
        select.send_keys(locale)
        for wanted, text in ((agent, "Agent: sees the unassigned inbox"), (admin, "Admin: archive and directory")):
            if wanted:
                self.until(text, lambda: next(l for l in self.css("#signin label.inline") if text in l.text)).click()
        self.click("Sign in", "#signin")
        self.until("the live stream", lambda: "on" in self.one("#live").get_attribute("class"))

    def start_thread(self, phone, name):
        self.type_into(self.t("contact_phone"), phone, "#threads")
        self.type_into(self.t("contact_name"), name, "#threads")
        self.click(self.t("start"), "#threads")
        self.see("#thread-title", name)

    def write(self, text):
        self.click(self.t("kind_text"), "#composer")
        def go():
            box = self.labelled(self.t("message"), "#composer")
            box.send_keys(text)
            box.send_keys(Keys.ENTER)  # Enter sends, as in a messaging app
            return True
        self.until(f"writing {text!r}", go)
        return self.see("#log li.outbound", text)

    def status_of(self, text):
        for li in self.css("#log li.outbound"):
            if text in li.text:
                return li.get_attribute("data-status")
        return None

    def wait_status(self, text, status):
        self.until(f"{text!r} {status}", lambda: self.status_of(text) == status)

    def tap(self, label):
        self.press(f"phone button {label!r}", lambda: [b for b in self.css("#screen button") if b.text.strip() == label][-1:])

    def contact_says(self, text):
        self.type_into(self.t("reply"), text, "#phone")
        self.click(self.t("send"), "#phone")
        self.see("#screen li.mine", text)

    def open_thread(self, name):
        self.press(f"thread {name!r} in the list",
                   lambda: [b for b in self.css("#thread-list button[data-thread]") if name in b.text])
        self.see("#thread-title", name)

    def t(self, key, **values):
        return self.d.execute_script("return t(arguments[0], arguments[1])", key, values)

    # ---- what the browser reports ----
    def errors(self):
        return [e for e in self.d.get_log("browser") if e["level"] == "SEVERE"]


def png(path):
    """A small real PNG (2x2, green) for the picture upload."""
    raw = b"".join(b"\x00" + b"\x0a\x7b\x55" * 2 for _ in range(2))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    body = chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    pathlib.Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


PAINT = """
    const paint = performance.getEntriesByType('paint');
    const e = paint.find(e => e.name === 'first-contentful-paint') || paint[0];
    const nav = performance.getEntriesByType('navigation')[0];
    const bytes = [nav, ...performance.getEntriesByType('resource')]
        .reduce((n, e) => n + (e.transferSize || e.encodedBodySize || 0), 0);
    return e ? {paint: e.startTime, bytes} : null;
"""


def first_visit(p):
    """Loads the console three times with the browser's cache off, and a one-line page as the
    baseline in between; returns (median first paint ms, bytes a visit transfers)."""
    p.d.execute_cdp_cmd("Network.enable", {})
    p.d.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    paints, baselines, size = [], [], 0
    for _ in range(3):
        p.d.get(p.base + "/")
        p.one("#signin:not([hidden])", "the sign-in form")
        timing = p.until("the console's paint", lambda: p.d.execute_script(PAINT))
        paints.append(timing["paint"])
        size = max(size, timing["bytes"])
        p.d.get("data:text/html,<p>baseline</p>")
        baselines.append(p.until("the baseline's paint", lambda: p.d.execute_script(PAINT))["paint"])
    p.d.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
    p.d.get(p.base + "/")
    p.one("#signin:not([hidden])", "the sign-in form")
    # Every language has every word.
    missing = p.d.execute_script("""
        const keys = Object.keys(I18N.en);
        return Object.entries(I18N).flatMap(([l, w]) => keys.filter(k => !(k in w)).map(k => l + ':' + k));
    """)
    assert not missing, f"untranslated: {missing}"
    paint, baseline = sorted(paints)[1], sorted(baselines)[1]
    print(f"first paint {paint:.0f} ms, median of {[round(x) for x in paints]} "
          f"(a one-line page: {baseline:.0f} ms), transferred {size} bytes")
    return paint, baseline, size


def held_after_a_day(p, text):
    """Moves the clock a day on, so the window closes, then writes text, which is held."""
    p.click("+25 hours")
    p.see("#window", "Window closed")
    p.write(text)
    p.wait_status(text, "pending")


def sandbox_story(p, tmp):
    """The README's sandbox story: opt-in, held message, ticks, reply, read, window, resume."""
    paint, baseline, size = first_visit(p)
    assert paint is not None and paint <= FIRST_PAINT_RATIO * baseline, f"first paint {paint} ms, a one-line page {baseline} ms"
    assert size <= ASSET_BYTES, f"transferred {size} bytes"

    p.sign_in("alex", "Alex Kim")
    p.start_thread("+447700900123", "Olivia")
    p.see("#thread-head", "Waiting for consent")
    # The contact's phone shows the opt-in request with its two buttons.
    p.see("#screen li.theirs", "connector_optin")
    p.write("Your order is ready")
    p.wait_status("Your order is ready", "pending")
    p.see("#log li.outbound", "Pending")
    p.shot("1-pending")

    p.tap("Yes")
    p.wait_status("Your order is ready", "delivered")
    msg = p.see("#log li.outbound", "Your order is ready")
    assert "✓✓" in msg.text and "Sent" in msg.text and "Delivered" in msg.text, msg.text
    assert len(p.css("time", msg)) == 2, "a time for sent and one for delivered"
    p.see("#thread-head", "Opted in")
    p.see("#window", "Window open")
    p.see("#screen li.theirs", "Your order is ready")

    p.contact_says("Thanks, see you at 5")
    p.see("#log li.inbound", "Thanks, see you at 5")
    # The search box finds what was said in one's threads, case folded, and opens its thread.
    p.type_into(p.t("search_words"), "SEE YOU", "#threads")
    p.click(p.t("search_go"), "#threads")
    p.see("#search-results", "Thanks, see you at 5")
    p.type_into(p.t("search_words"), "nowhere to be found", "#threads")
    p.click(p.t("search_go"), "#threads")
    p.see("#search-results", p.t("search_none"))
    # The thread is open: it is marked read, so no unread badge stays.
    p.until("no unread badge", lambda: not p.css("#thread-list .badge.unread"))
    p.click("Read everything", "#phone")
    p.wait_status("Your order is ready", "read")
    assert p.css("#log li[data-status=read] .tick.read")
    p.shot("2-read")

    # A day passes: the window closes, a text is held, the resume request goes out.
    held_after_a_day(p, "Are you still there?")
    p.tap("Resume conversation")
    p.wait_status("Are you still there?", "delivered")
    p.see("#window", "Window open")

    # A picture and a template from the composer.
    p.click("Picture", "#composer")
    p.labelled("Picture (PNG or JPEG)", "#composer").send_keys(png(os.path.join(tmp, "photo.png")))
    p.type_into("Caption (optional)", "The receipt", "#composer")
    p.click("Send", "#composer")
    p.until("the picture in the thread", lambda: p.css("#log li.outbound figure img[alt='The receipt']"))
    p.until("the picture on the phone", lambda: p.css("#screen li.theirs img[alt='The receipt']"))
    p.until("the picture delivered", lambda: p.css("#log li.outbound[data-status=delivered] figure"))

    # The contact quotes the picture, then sends a file, a voice note, a place, a card and a
    # kind WhatsApp's API does not deliver: each is shown as people expect.
    p.press("the quote box", lambda: p.css("#phone input[name=quote]"))
    p.contact_says("Is this the one?")
    p.see("#log li.inbound blockquote.quote", "The receipt")
    p.press("the quote box off", lambda: p.css("#phone input[name=quote]"))
    for sample in ("document", "voice", "location", "contact", "poll"):
        Select(p.labelled(p.t("sample"), "#phone")).select_by_value(sample)
        p.click(p.t("send_sample"), "#phone")
    p.until("the document to download", lambda: p.css("#log li.inbound figure.document a[download='mandate-signed.pdf']"))
    p.see("#log li.inbound figure.document", "The signed mandate")
    p.until("the voice note's player", lambda: p.css("#log li.inbound figure.audio audio"))
    p.see("#log li.inbound figure.audio", p.t("voice_note"))
    p.see("#log li.inbound .place", "Branch office")
    assert p.css("#log li.inbound .place a[href*='mlat=51.501364']"), "a map link"
    p.see("#log li.inbound .card", "Harry Patel")
    p.see("#log li.inbound .unsupported", "poll_creation")
    p.shot("2b-every-kind")

    # The employee answers the contact's question with a document, quoting it, then a place.
    p.press("reply to the question", lambda: [b for li in p.css("#log li.inbound") if "Is this the one?" in li.text
                                              for b in p.css("button.reply", li)])
    p.see("#composer .replying", "Is this the one?")
    p.click(p.t("kind_file"), "#composer")
    terms = pathlib.Path(tmp, "terms.pdf")
    terms.write_bytes(b"%PDF-1.4\n% our terms\n%%EOF\n")
    p.labelled(p.t("any_file"), "#composer").send_keys(str(terms))
    p.type_into(p.t("caption"), "Our terms", "#composer")
    p.click(p.t("send"), "#composer")
    p.until("the document sent, quoting the question",
            lambda: [li for li in p.css("#log li.outbound") if p.css("figure.document a[download='terms.pdf']", li)
                     and "Is this the one?" in li.text])
    p.see("#screen li.theirs", "Our terms")
    p.until("the document on the contact's phone", lambda: p.css("#screen li.theirs a[download='terms.pdf']"))
    assert not p.css("#composer .replying"), "the reply is sent: nothing is quoted any more"
    p.click(p.t("kind_location"), "#composer")
    p.type_into(p.t("latitude"), "51.5014", "#composer")
    p.type_into(p.t("longitude"), "-0.1419", "#composer")
    p.type_into(p.t("place_name"), "Our branch", "#composer")
    p.click(p.t("send"), "#composer")
    p.see("#log li.outbound .place", "Our branch")
    p.see("#screen li.theirs", "Our branch")
    p.click(p.t("kind_text"), "#composer")
    p.click("Template", "#composer")
    select = p.labelled("Template", "#composer")
    select.send_keys("order_update")
    p.type_into("Parameter 1", "A-1042", "#composer")
    p.click("Send", "#composer")
    p.see("#log li.outbound", "order_update")
    p.see("#screen li.theirs", "A-1042")

    # A message still queued or held can be recalled.
    held_after_a_day(p, "Never mind")
    p.press("the recall button", lambda: [b for li in p.css("#log li.outbound") if "Never mind" in li.text
                                          for b in p.css("button", li) if b.text == "Recall"])
    p.wait_status("Never mind", "recalled")
    p.contact_says("Still here")
    p.see("#log li.inbound", "Still here")

    # A text held longer than CONNECTOR_HELD_TTL (a day here) fails, saying what to do next.
    held_after_a_day(p, "Anyone there?")
    p.click("+25 hours")
    p.wait_status("Anyone there?", "failed")
    p.see("#log li.outbound .err", "Send it again if it still matters")
    p.see("#log li.notice", "A message could not be delivered")
    accessible(p)
    p.shot("3-sandbox-story")

    # Issue 31, "Disabled composer": "The message templates and send message field will be
    # disabled" for a contact who opted out, with the reason shown; enabled again once they
    # opt back in.
    p.contact_says("STOP")
    p.see("#composer #composer-off", "opted out")
    p.until("the composer disabled", lambda: p.one("#composer fieldset").get_attribute("disabled") is not None)
    assert not p.one("#composer textarea").is_enabled()
    p.shot("3b-opted-out")
    p.contact_says("YES")
    p.until("the composer enabled", lambda: not p.css("#composer #composer-off") and p.one("#composer textarea").is_enabled())


def accessible(p):
    """Every control has a name a screen reader can read, and the focus can reach it."""
    unnamed = p.d.execute_script("""
        const name = (el) => (el.labels && el.labels.length) || el.getAttribute('aria-label')
            || el.getAttribute('aria-labelledby') || (el.textContent || '').trim();
        return [...document.querySelectorAll('input, select, textarea, button')]
            .filter((el) => el.offsetParent !== null && !name(el)).map((el) => el.outerHTML.slice(0, 120));
    """)
    assert not unnamed, f"controls without a name: {unnamed}"
    unreachable = p.d.execute_script("""
        return [...document.querySelectorAll('input, select, textarea, button')]
            .filter((el) => el.offsetParent !== null && el.tabIndex < 0).length;
    """)
    assert unreachable == 0, f"{unreachable} controls out of the tab order"
    # WCAG AA: text contrast at least 4.5:1 against the background it is drawn on.
    low = p.d.execute_script("""
        const rgb = (c) => (c.match(/[0-9.]+/g) || []).map(Number);
        const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
            .reduce((s, v, i) => s + v * [0.2126, 0.7152, 0.0722][i], 0);
        const bg = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
            if (c.length === 3 || c[3] > 0) return c.slice(0, 3); } return [255, 255, 255]; };
        const out = [];
        for (const el of document.querySelectorAll('body *')) {
            if (el.offsetParent === null || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
            const style = getComputedStyle(el);
            if (parseFloat(style.opacity) < 1) continue;  // disabled controls are exempt
            const [a, b] = [lum(rgb(style.color)), lum(bg(el))];
            const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            if (ratio < 4.5) out.push(el.tagName + ' ' + ratio.toFixed(2) + ' ' + el.textContent.trim().slice(0, 40));
        }
        return out;
    """)
    assert not low, f"text below 4.5:1 contrast: {low}"


def keyboard_sign_in(p, sub, name):
    """Signs in with the keyboard alone: the form takes the focus, Tab moves, Enter submits."""
    p.one("#signin:not([hidden])")
    focused = p.d.switch_to.active_element
    assert focused.get_attribute("name") == "sub", "the user id field has the focus"
    focused.send_keys(sub, Keys.TAB)
    p.d.switch_to.active_element.send_keys(name, Keys.TAB)
    p.d.switch_to.active_element.send_keys("fr", Keys.TAB)  # the language
    p.d.switch_to.active_element.send_keys(Keys.ENTER)  # in the sub-organization field: submits
    p.until("the live stream", lambda: "on" in p.one("#live").get_attribute("class"))


def group_story(p, tmp):
    """Colleagues in one thread: add with history, live updates, French notices, leave; the
    unassigned inbox and claim; unread badges; the admin's archive with its verification."""
    first_visit(p)
    keyboard_sign_in(p, "sam", "Sam Lee")  # Sam is in the directory once signed in
    p.see("#threads-title", "Conversations")
    p.see("#who", "Connecté : Sam Lee")
    p.sign_in("alex", "Alex Kim", agent=True, admin=True)
    p.start_thread("+447700900456", "Noah")
    p.tap("Yes")
    p.see("#thread-head", "Opted in")
    p.write("Hello Noah")
    p.wait_status("Hello Noah", "delivered")

    # Add Sam with the history, by name from the directory.
    p.type_into("Colleague’s name", "Sa", "#people")
    def shared():
        box = p.one("#people input[name=share_history]")
        if not box.is_selected():
            box.click()
        return box.is_selected()
    p.until("the share history box ticked", shared)
    p.one("#people button[data-add=sam]", "Sam in the search results").click()
    p.see("#people-list", "Sam Lee")
    p.see("#log li.notice", "has added Sam Lee")
    p.see("#screen li.theirs", "Sam Lee")  # the contact is told who joined

    # Sam sees the thread, its history and the notice in French, and writes.
    p.sign_in("sam", "Sam Lee", locale="fr")
    p.open_thread("Noah")
    p.see("#log li.outbound", "Hello Noah")
    p.see("#log li.notice", "a ajouté Sam Lee")
    p.see("#people-title", "Participants")
    p.write("Bonjour, ici Sam")
    p.wait_status("Bonjour, ici Sam", "delivered")
    p.see("#screen li.theirs", "*Sam Lee*: Bonjour, ici Sam")
    # Issue 31, group receipts: "The delivery receipts will not be displayed for messages sent
    # by a MultiLine User" in a group; the status is kept.
    assert p.status_of("Bonjour, ici Sam") == "delivered"
    employees = [li for li in p.css("#log li.outbound") if "Hello Noah" in li.text or "Bonjour" in li.text]
    assert len(employees) == 2 and not any(p.css(".tick", li) for li in employees), "no ticks in a group thread"
    assert p.css("#log li.outbound .tick"), "the opt-in template, the system's, keeps its ticks"
    p.shot("4-group-fr")

    # Alex sees Sam's message with Sam's name, live.
    p.sign_in("alex", "Alex Kim", agent=True, admin=True)
    p.open_thread("Noah")
    p.see("#log li.outbound", "Bonjour, ici Sam")
    assert any("Sam Lee" in li.text for li in p.css("#log li.outbound") if "Bonjour" in li.text)
    p.contact_says("Merci à vous deux")
    p.see("#log li.inbound", "Merci à vous deux")

    # The admin's archive of the thread, verified.
    p.one("#archive summary").click()
    p.click("Show the archive", "#archive")
    p.see("#verification", "Chain verified")
    assert len(p.css("#archive tbody tr")) >= 5
    p.shot("5-archive")

    # A contact who writes first lands in the unassigned inbox; an agent claims the thread.
    p.type_into("Contact", "+447700900789", "#phone")
    p.click("Open", "#phone")
    p.contact_says("Hello, I want to open an account")
    p.click("Unassigned", "#threads")
    p.see("#thread-list", "+447700900789")
    p.click("Claim", "#thread-list")
    p.see("#thread-head", "Waiting for consent")
    p.see("#log li.inbound", "Hello, I want to open an account")
    p.see("#screen li.theirs", "connector_optin")

    # Noah writes while another thread is open: Noah's thread shows an unread badge, live,
    # until it is opened.
    p.type_into("Contact", "+447700900456", "#phone")
    p.click("Open", "#phone")
    p.contact_says("One more question")
    p.until("Noah's unread badge", lambda: any(
        "Noah" in b.text and b.find_elements(By.CSS_SELECTOR, ".badge.unread")
        for b in p.css("#thread-list button[data-thread]")))
    p.open_thread("Noah")
    p.see("#log li.inbound", "One more question")
    p.until("no unread badge", lambda: not p.css("#thread-list .badge.unread"))
    accessible(p)

    # The new contact taps "No": the thread shows the opt-out. Alex hands it to Sam without
    # the history: it leaves Alex's list (with Alex's own notice) and reaches Sam's.
    p.type_into("Contact", "+447700900789", "#phone")
    p.click("Open", "#phone")
    p.tap("No")
    p.see("#thread-list", "Opted out")
    p.press("the opted-out thread", lambda: [b for b in p.css("#thread-list button[data-thread]") if "Opted out" in b.text])
    p.type_into("Colleague’s name", "Sa", "#people")
    p.one("#people button[data-transfer=sam]", "Sam in the search results").click()
    p.until("the thread gone from Alex's list",
            lambda: not any("Opted out" in b.text for b in p.css("#thread-list button[data-thread]")))
    p.see("#thread .notice", "You left the conversation.")

    # Sam leaves Noah's thread: the thread goes from Sam's list and Alex is told.
    p.sign_in("sam", "Sam Lee", locale="fr")
    p.see("#thread-list", "Refusé")  # the transferred thread, in Sam's list
    p.open_thread("Noah")
    p.click("Quitter la conversation", "#people")
    p.until("the thread gone from Sam's list",
            lambda: not any("Noah" in b.text for b in p.css("#thread-list button[data-thread]")))
    p.sign_in("alex", "Alex Kim", agent=True, admin=True)
    p.open_thread("Noah")
    p.see("#log li.notice", "Sam Lee has left")
    p.until("Sam gone from the participants", lambda: "Sam Lee" not in p.text_of("#people-list"))
    p.shot("6-group-story")


def main():
    args = argparse.ArgumentParser()
    args.add_argument("--base", required=True)
    args.add_argument("--story", choices=["sandbox", "group"], required=True)
    args.add_argument("--shots", required=True)
    a = args.parse_args()
    driver = browser()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            page = Page(driver, a.base, a.shots)
            {"sandbox": sandbox_story, "group": group_story}[a.story](page, tmp)
            errors = page.errors()
            assert not errors, "errors in the browser console:\n" + json.dumps(errors, indent=1)
    except BaseException:
        try:
            Page(driver, a.base, a.shots).shot(f"failed-{a.story}")
            print("browser log:", json.dumps(driver.get_log("browser"), indent=1), file=sys.stderr)
        finally:
            driver.quit()
        raise
    driver.quit()
    print(f"story {a.story}: passed")


if __name__ == "__main__":
    main()
