#!/usr/bin/env bash
# Installs the browser the web client's tests drive: Debian's chromium, through apt-get.
# Playwright's own browser download is not used (it needs hosts the project does not depend on);
# the tests launch /usr/bin/chromium through playwright-core instead (test/web/browser.ts).
set -euo pipefail

BROWSER="${PARLEY_CHROMIUM:-/usr/bin/chromium}"
# Emoji (reactions) render as empty boxes without a colour emoji font; it is small.
EMOJI_FONT=/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
if [ -x "$BROWSER" ] && { [ -n "${PARLEY_CHROMIUM:-}" ] || [ -f "$EMOJI_FONT" ]; }; then
  echo "setup:browser: $BROWSER is installed"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup:browser: $BROWSER is missing and apt-get is not available; install Chromium yourself and set PARLEY_CHROMIUM to its path" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "setup:browser: installing chromium needs root (run as root, or with passwordless sudo): apt-get install -y chromium" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# Package lists are absent in fresh containers: fetch them once.
if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e '^lock$' -e '^partial$' || true)" ]; then
  $SUDO apt-get update
fi
PACKAGES="chromium fonts-noto-color-emoji"
if ! $SUDO apt-get install -y --no-install-recommends $PACKAGES; then
  # Stale lists (a package version that no longer exists): refresh once and retry.
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends $PACKAGES
fi
if [ ! -x "$BROWSER" ]; then
  echo "setup:browser: apt-get finished but $BROWSER is not there" >&2
  exit 1
fi
echo "setup:browser: installed $("$BROWSER" --version 2>/dev/null || echo "$BROWSER")"
