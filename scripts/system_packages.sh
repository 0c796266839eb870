#!/usr/bin/env bash
# Install the Debian packages the test suite drives for real, if any is missing:
#   postgresql        the label store's second database
#   chromium          the labeling page's browser test (Playwright drives it)
#   prometheus        promtool for the alert rules, and a real scrape
# Needs root (or sudo) and Debian's package index; a machine that has them all
# installs nothing.
set -euo pipefail

missing=()
[ -d /usr/lib/postgresql ] || missing+=(postgresql)
command -v chromium >/dev/null || missing+=(chromium)
command -v promtool >/dev/null || missing+=(prometheus)
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "system_packages: need root to install ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2
        exit 2
    fi
    sudo=(sudo)
fi
echo "system_packages: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
