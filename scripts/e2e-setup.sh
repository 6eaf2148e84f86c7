#!/usr/bin/env bash
# Prepares the offline real-VS-Code test harness (see test/e2e/run.mjs): Debian's
# Chromium and ripgrep, and code-server (VS Code 1.100.3 with a Node extension host)
# in a cache folder outside the project. Idempotent: a second run only checks.
#
#   VLCACHE_E2E_CACHE   cache root (default ~/.cache/vlcache-e2e)
#
# Needs only Debian's archive and the npm registry. Prints the code-server binary's
# path on its last line.
set -euo pipefail

CODE_SERVER_VERSION=4.100.3 # the last release that runs on Node 20 (VS Code 1.100.3)
RIPGREP_CACHE=vscode-ripgrep-cache-1.15.11
RIPGREP_TARBALL=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz

cache="${VLCACHE_E2E_CACHE:-$HOME/.cache/vlcache-e2e}"
dest="$cache/code-server-$CODE_SERVER_VERSION"
bin="$dest/bin/code-server"
root="$(cd "$(dirname "$0")/.." && pwd)"

log() { echo "e2e-setup: $*" >&2; }

# 1. Debian packages: the browser, ripgrep (code-server's search, and the tarball
#    below) and the Kerberos headers that code-server's kerberos module builds against.
missing=()
for pkg in chromium ripgrep libkrb5-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing ${missing[*]} from Debian"
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >&2
fi

# 2. code-server, into its own folder (about 300 MB: not the project's node_modules).
if [ ! -x "$bin" ]; then
  log "installing code-server@$CODE_SERVER_VERSION into $dest"
  mkdir -p "$cache"
  work="$(mktemp -d "$cache/.install-XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  # @vscode/ripgrep looks for its release tarball in $TMPDIR before trying GitHub:
  # give it one that holds Debian's rg.
  mkdir -p "$work/tmp/$RIPGREP_CACHE" "$work/rg"
  cp /usr/bin/rg "$work/rg/rg"
  tar -czf "$work/tmp/$RIPGREP_CACHE/$RIPGREP_TARBALL" -C "$work/rg" rg
  # unsafe_perm: its postinstall refuses to run as root otherwise; yes: node-pty's
  # postinstall runs `npx node-gyp`, which is cancelled otherwise. argon2 and kerberos
  # build from source (that is expected).
  # A plain local install run from inside the folder: with --global or --prefix, the
  # postinstall's own `npm install` in lib/vscode inherits them and installs the wrong tree.
  mkdir -p "$work/pkg"
  echo '{ "name": "vlcache-e2e-code-server", "private": true }' >"$work/pkg/package.json"
  (
    cd "$work/pkg"
    TMPDIR="$work/tmp" npm_config_unsafe_perm=true npm_config_yes=true \
      npm install --no-audit --no-fund --no-save --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2
  )
  mkdir -p "$work/pkg/bin"
  ln -s ../node_modules/code-server/out/node/entry.js "$work/pkg/bin/code-server"
  "$work/pkg/bin/code-server" --version >/dev/null
  rm -rf "$dest"
  mv "$work/pkg" "$dest"
  rm -rf "$work"
  trap - EXIT
fi

# 3. playwright-core is a devDependency of the project (npm ci installs it); it
#    drives /usr/bin/chromium and never downloads a browser.
if [ ! -f "$root/node_modules/playwright-core/package.json" ]; then
  log "playwright-core is missing from node_modules: run npm ci first"
  exit 1
fi

log "ready: code-server $("$bin" --version | head -1), $(/usr/bin/chromium --version 2>/dev/null)"
echo "$bin"
