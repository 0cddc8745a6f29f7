#!/usr/bin/env python3
"""web_click.py CHROMIUM PROFILE URL SCRIPT: open URL in headless
Chromium, driven over its DevTools pipe (--remote-debugging-pipe: JSON
messages separated by NUL bytes, Chromium reading fd 3 and writing fd 4),
evaluate the JavaScript expression SCRIPT in the page (a promise is
awaited) and print its value as JSON. Exit 1 on any error. Used by
web_test.sh for what --dump-dom cannot do: press a button."""
import fcntl
import json
import os
import subprocess
import sys
import time


def main():
    chromium, profile, url, script = sys.argv[1:5]
    to_chrome_r, to_chrome_w = os.pipe()
    from_chrome_r, from_chrome_w = os.pipe()
    # Chromium expects the pipe on fds 3 (in) and 4 (out): bash
    # moves them there from numbers of 10 and up (none of them 3 or 4)
    for name in ("to_chrome_r", "from_chrome_w"):
        fd = locals()[name]
        hi = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        if name == "to_chrome_r":
            to_chrome_r = hi
        else:
            from_chrome_w = hi
    p = subprocess.Popen(
        ["bash", "-c", 'exec "$0" "$@" 3<&%d 4>&%d %d<&- %d>&-' %
         (to_chrome_r, from_chrome_w, to_chrome_r, from_chrome_w),
         chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--remote-debugging-pipe",
         "--user-data-dir=" + profile, "about:blank"],
        pass_fds=(to_chrome_r, from_chrome_w),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(to_chrome_r)
    os.close(from_chrome_w)
    w = os.fdopen(to_chrome_w, "wb", buffering=0)
    r = os.fdopen(from_chrome_r, "rb", buffering=0)
    buf = b""
    seq = [0]

    def call(method, params=None, session=None):
        nonlocal buf
        seq[0] += 1
        msg = {"id": seq[0], "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        w.write(json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in buf:
                chunk = r.read(65536)
                if not chunk:
                    raise RuntimeError("chromium closed its pipe")
                buf += chunk
            line, buf = buf.split(b"\0", 1)
            m = json.loads(line)
            if m.get("id") == seq[0]:
                if "error" in m:
                    raise RuntimeError(method + ": " + json.dumps(m["error"]))
                return m["result"]

    try:
        t = call("Target.createTarget", {"url": "about:blank"})
        s = call("Target.attachToTarget",
                 {"targetId": t["targetId"], "flatten": True})["sessionId"]
        call("Page.enable", session=s)
        call("Page.navigate", {"url": url}, session=s)
        # the page loads and signs in on its own; SCRIPT waits for what
        # it needs (it is awaited, up to the deadline below)
        res = call("Runtime.evaluate",
                   {"expression": script, "awaitPromise": True,
                    "returnByValue": True, "timeout": 60000}, session=s)
        if "exceptionDetails" in res:
            raise RuntimeError("script: " + json.dumps(res["exceptionDetails"]))
        print(json.dumps(res["result"].get("value")))
        call("Browser.close")
        return 0
    except Exception as e:  # noqa: BLE001 - any failure fails the check
        print("web_click: %s" % e, file=sys.stderr)
        return 1
    finally:
        deadline = time.time() + 10
        while p.poll() is None and time.time() < deadline:
            time.sleep(0.1)
        if p.poll() is None:
            p.kill()
            p.wait()


if __name__ == "__main__":
    sys.exit(main())
