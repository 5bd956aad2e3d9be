"""The sessions app in a real browser: served as each user by a real WSGI server (its own process, as that
user's uid), fed by a running agent and the fake API, driven by headless chromium.

One browser and one portal for the module (the pages only read, except Extend, whose session no other
test looks at); the agent is stopped by the last test alone.  Screenshots: tests/webapp/artifacts/
(or $OOD_K8S_ARTIFACTS/webapp).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from typing import Any, NamedTuple

import pytest
import requests

from ood_k8s.core import vocab
from ood_k8s.webapp.app import CSRF_COOKIE
from tests.conftest import ALICE, BOB
from tests.webapp.browser import shot
from tests.webapp.conftest import CAROL, COURSE, Site

pytestmark = pytest.mark.browser


class World(NamedTuple):
    site: Site
    running: str      # alice's running GPU session (extended below)
    waiting: str      # alice's session waiting for a GPU node
    held: str         # alice's session submitted on hold
    ended: str        # alice's session that ran out of memory
    bobs: list[str]   # bob's ten sessions: one running, nine waiting
    alice: str        # the URL of alice's app
    bob: str
    carol: str


@pytest.fixture(scope="module")
def world(site: Site) -> Iterator[World]:
    running, waiting, ended = (site.submit(ALICE, "gpu-t4"), site.submit(ALICE, "gpu-t4"), site.submit(ALICE))
    held = site.submit(ALICE, hold=True)
    site.run(ALICE, running)
    site.wait_for_gpu(ALICE, waiting)
    site.out_of_memory(ALICE, ended)
    bobs = [site.submit(BOB) for _ in range(10)]
    site.run(BOB, bobs[0])
    site.start_agent()
    site.seen(ALICE, ended, lambda p: p["status"].get("phase") == "Failed")
    site.seen(BOB, bobs[0], lambda p: p["status"].get("phase") == "Running")
    yield World(site, running, waiting, held, ended, bobs, site.serve(ALICE).url, site.serve(BOB).url,
                site.serve(CAROL).url)


def text(driver: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def arrived(driver: Any, css: str) -> str:
    """The text of ``css`` once the page that has it has loaded (a form's submit navigates)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return str(WebDriverWait(driver, 15).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))).text)


def minutes(shown: str) -> int:
    """``1h 49m`` / ``49m`` -> minutes."""
    m = re.fullmatch(r"(?:(\d+)h )?(\d+)m", shown)
    assert m, shown
    return int(m.group(1) or 0) * 60 + int(m.group(2))


def test_a_student_sees_reason_time_left_and_budget(browser: Any, world: World) -> None:
    browser.get(world.alice + "/")
    assert browser.title == "My sessions · My GPU sessions"
    card = f'li.session[data-id="{world.running}"]'
    assert text(browser, f"{card} .state") == "Running"
    assert 45 <= minutes(text(browser, f"{card} .left")) <= 50  # started 10 min ago with 1 h
    assert "Insufficient nvidia.com/gpu" in text(browser, f'li.session[data-id="{world.waiting}"] .reason')
    assert text(browser, f'li.session[data-id="{world.waiting}"] .state') == "Starting"
    assert text(browser, f'li.session[data-id="{world.held}"] .state') == "Held"
    assert "ran out of memory" in text(browser, f'tr[data-id="{world.ended}"] .reason')
    assert re.search(r"cs101: [\d.]+ of 10 GPU-hours left", text(browser, ".budget-summary"))
    assert not any(b in browser.page_source for b in world.bobs), "another student's sessions never show"
    assert "Course cs101" not in browser.page_source, "a student has no course view"
    # Landmarks, a language, names for every control, and the skip link first in the tab order.
    assert browser.execute_script(
        "return !!(document.documentElement.lang && document.querySelector('header[role=banner]') && "
        "document.querySelector('nav[aria-label]') && document.querySelector('main#main') && "
        "document.querySelector('footer[role=contentinfo]'))")
    unnamed = browser.execute_script(
        "return [...document.querySelectorAll('button, a, input:not([type=hidden])')]"
        ".filter(e => !(e.getAttribute('aria-label') || e.textContent.trim())).length")
    assert unnamed == 0
    from selenium.webdriver.common.keys import Keys

    browser.find_element("css selector", "body").send_keys(Keys.TAB)
    assert browser.switch_to.active_element.get_attribute("class") == "skip"
    shot(browser, "student-sessions")
    # A phone: the page reflows, nothing scrolls sideways.
    browser.set_window_size(390, 844)
    try:
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        browser.set_window_size(1280, 1400)
    shot(browser, "student-sessions-phone", width=390)


def test_extend_from_the_browser_then_a_refusal_past_the_ceiling(browser: Any, world: World) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    browser.get(f"{world.alice}/sessions/{world.running}")
    before = minutes(text(browser, ".left"))
    # The keyboard alone: the button is reachable and Enter submits the form (no script on the page).
    browser.find_element(By.CSS_SELECTOR, 'button[value="30"]').send_keys(Keys.ENTER)
    assert arrived(browser, ".done").startswith("Extended by 30 min")
    after = minutes(text(browser, ".left"))
    assert before + 29 <= after <= before + 30
    assert "?extended=30" in browser.current_url, "post/redirect/get: a reload extends nothing"
    pod = world.site.admin.get("Pod", world.running, "ood-alice")
    assert vocab.DEADLINE_ANNOTATION in pod["metadata"]["annotations"]
    shot(browser, "student-extended")

    # 30 minutes are left below the ceiling (the profile's 2 h): an hour is refused, in one line.
    browser.find_element(By.CSS_SELECTOR, 'button[value="60"]').click()
    refusal = arrived(browser, ".refusal[role=alert]")
    assert refusal.startswith("This session can run at most until")
    assert re.search(r"ask for at most 30 ?m(in)?$", refusal), refusal
    assert "\n" not in refusal and after - 1 <= minutes(text(browser, ".left")) <= after
    shot(browser, "student-extend-refused")

    browser.find_element(By.CSS_SELECTOR, 'button[value="30"]').click()
    assert arrived(browser, ".done").startswith("Extended by 30 min")
    assert "cannot be extended further" in text(browser, ".at-ceiling")
    assert not browser.find_elements(By.CSS_SELECTOR, "form.extend"), "no button that can only be refused"


def test_a_student_never_sees_another_students_session_or_a_course(browser: Any, world: World) -> None:
    bob_job = world.bobs[0]
    for path, status in ((f"/sessions/{bob_job}", 404), (f"/courses/{COURSE}", 403),
                         (f"/courses/{COURSE}.csv", 403), ("/courses/nope", 404), ("/sessions/..%2f..%2fetc", 404)):
        r = requests.get(world.alice + path, timeout=10)
        assert r.status_code == status, path
        assert "bob" not in r.text and bob_job not in r.text.replace(path, ""), path
    browser.get(f"{world.alice}/sessions/{bob_job}")
    assert text(browser, "h1") == "Not found"
    shot(browser, "student-other-session-404")
    browser.get(f"{world.alice}/courses/{COURSE}")
    assert text(browser, "h1") == "Forbidden"
    shot(browser, "student-course-403")

    # Extending another's session, even with a valid form token, changes nothing.
    jar = requests.Session()
    jar.get(world.alice + "/", timeout=10)
    token = jar.cookies[CSRF_COOKIE]  # what the page's forms carry
    r = jar.post(f"{world.alice}/sessions/{bob_job}/extend", data={"csrf": token, "minutes": "60"},
                 allow_redirects=False, timeout=10)
    assert r.status_code == 404
    assert vocab.DEADLINE_ANNOTATION not in world.site.admin.get("Pod", bob_job, "ood-bob")["metadata"].get(
        "annotations", {})
    # Without the page's token, nothing is extended either.
    r = requests.post(f"{world.alice}/sessions/{world.running}/extend", data={"minutes": "30"}, timeout=10)
    assert r.status_code == 403
    # The proxy says someone else is asking: this user's server refuses.
    r = requests.get(world.alice + "/", headers={"X-Forwarded-User": "bob"}, timeout=10)
    assert r.status_code == 403 and world.running not in r.text


def test_an_instructor_sees_the_course_read_only_and_as_csv(browser: Any, world: World) -> None:
    from selenium.webdriver.common.by import By

    browser.get(world.carol + "/")
    assert "You have no session" in browser.page_source
    browser.find_element(By.LINK_TEXT, f"Course {COURSE}").click()
    assert text(browser, "h1") == f"Course {COURSE}"
    rows = browser.find_elements(By.CSS_SELECTOR, "table.course-sessions tbody tr")
    shown = {r.get_attribute("data-id") for r in rows}
    assert shown == {world.running, world.waiting, world.held, world.ended, *world.bobs}
    alice_row = f'tr[data-id="{world.running}"]'
    assert text(browser, f"{alice_row} td:nth-child(1)") == "alice"
    assert text(browser, f"{alice_row} .state") == "Running"
    assert text(browser, f"{alice_row} td:nth-child(4)") == "gpu-t4"
    assert not browser.find_elements(By.CSS_SELECTOR, "main form"), "read-only: no form, no button"
    assert "password" not in browser.page_source.lower()
    assert browser.find_element(By.CSS_SELECTOR, "svg[role=img]").get_attribute("aria-labelledby")
    shot(browser, "instructor-course")

    csv = requests.get(f"{world.carol}/courses/{COURSE}.csv", timeout=10)
    assert csv.headers["Content-Type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0] == "user,session,app,state,reason,profile,gpus,minutes_left,submitted_utc"
    assert len(lines) == 1 + 14 and any(line.startswith(f"alice,{world.running},jupyter,Running,") for line in lines)


def test_my_usage_is_a_chart(browser: Any, world: World) -> None:
    from selenium.webdriver.common.by import By

    browser.get(world.alice + "/usage")
    title = browser.find_element(By.CSS_SELECTOR, "svg[role=img] title").get_attribute("textContent")
    assert re.search(r"cs101: [\d.]+ of 10 GPU-hours used, [\d.]+ left", title)
    assert browser.find_elements(By.CSS_SELECTOR, "table.budgets tbody tr")
    shot(browser, "student-usage")


def test_a_page_with_ten_sessions_takes_under_300_ms(world: World) -> None:
    with requests.Session() as http:
        assert http.get(world.bob + "/", timeout=10).text.count('class="card session"') == 10
        times = []
        for _ in range(15):
            start = time.perf_counter()
            r = http.get(world.bob + "/", timeout=10)
            times.append(time.perf_counter() - start)
            assert r.status_code == 200
    assert statistics.median(times) <= 0.3, times


def test_every_page_works_with_the_agent_stopped(browser: Any, world: World) -> None:
    world.site.stop_agent()
    browser.get(world.alice + "/")
    assert "is not answering" in text(browser, ".banner")
    assert text(browser, f'li.session[data-id="{world.running}"] .state') == "Running"  # from the API, as alice
    assert not any(b in browser.page_source for b in world.bobs)
    shot(browser, "agent-stopped-student")
    browser.get(world.alice + "/usage")
    assert "is not answering" in text(browser, ".banner")
    browser.get(f"{world.carol}/courses/{COURSE}")
    assert "is not answering" in text(browser, ".banner") and "students' sessions" in text(browser, ".banner")
    assert requests.get(f"{world.carol}/courses/{COURSE}", timeout=10).status_code == 503
    shot(browser, "agent-stopped-instructor")

    world.site.fk.hang()  # and now the API server too: one line, never a traceback
    try:
        r = requests.get(world.alice + "/", timeout=30)
        assert r.status_code == 200 and "cannot be read right now" in r.text and "Traceback" not in r.text
        browser.get(world.alice + "/")
        shot(browser, "agent-and-api-down")
    finally:
        world.site.fk.unhang()
