#!/usr/bin/env python3
"""Instructions per login flow: the load test's login scenario with the server under callgrind.

Usage, from a checkout with release builds of the load test and the server:

    python3 docs/bench/callgrind-login.py TARGET_DIR LABEL [SCENARIO]

SCENARIO is `login` (the default: instructions per login flow) or `reads` (per logged-in
`GET /api/me` or `GET /`, the load test's read scenarios together).

It runs `TARGET_DIR/release/examples/loadtest --no-build` with the server started as
`valgrind --tool=callgrind --instr-atstart=no TARGET_DIR/release/loginwith ...`, switches the
instrumentation on when the load test prints `scenario login` and off (with a dump) at the next
scenario, then prints the login scenario's instructions, the flows completed (from the load
test's JSON) and their quotient. Instructions do not depend on how busy the machine is, unlike the
load test's own timings; run it two or three times per build: runs of one build differ by about 1 % here.
"""

import json
import os
import re
import subprocess
import sys
import tempfile


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        return 2
    target, label = sys.argv[1], sys.argv[2]
    scenario = sys.argv[3] if len(sys.argv) == 4 else "login"
    work = tempfile.mkdtemp(prefix=f"cg-login-{label}-")
    out = os.path.join(work, "cg.out")
    wrapper = os.path.join(work, "loginwith-under-callgrind.sh")
    with open(wrapper, "w") as f:
        f.write(
            "#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no "
            f"--callgrind-out-file={out} {os.path.join(target, 'release', 'loginwith')} \"$@\"\n"
        )
    os.chmod(wrapper, 0o755)
    report = os.path.join(work, "loadtest.json")
    loadtest = [
        os.path.join(target, "release", "examples", "loadtest"),
        "--duration", "6", "--concurrency", "2", "--provider-alg", "eddsa",
        "--no-build", "--loginwith-bin", wrapper, "--json", report,
    ]
    process = subprocess.Popen(loadtest, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    on = False
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith(f"scenario {scenario}") and not on:
            subprocess.run(["callgrind_control", "-i", "on"], capture_output=True)
            on = True
        elif line.startswith("scenario") and on:
            subprocess.run(["callgrind_control", "-i", "off"], capture_output=True)
            subprocess.run(["callgrind_control", "-d"], capture_output=True)
            on = False
    if process.wait() != 0:
        print(f"the load test failed; its output is in {work}")
        return 1
    with open(out + ".1") as f:
        totals = next(int(m.group(1)) for m in map(re.compile(r"^totals: (\d+)").match, f) if m)
    with open(report) as f:
        scenarios = json.load(f)["results"]["scenarios"]
    ops = sum(s["ops"] for s in scenarios if s["name"].split(" ")[0] == scenario)
    unit = "flow" if scenario == "login" else "request"
    print(f"{label}: {totals:,} instructions / {ops} {unit}s = {totals / ops / 1e3:.1f} k per {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
