#!/usr/bin/env bash
# Installs what the end-to-end tests need to drive a real VS Code (code-server) offline:
# Debian's chromium + ripgrep (+ libkrb5-dev to build code-server's `kerberos` module), and
# code-server itself in a cache dir OUTSIDE this project's node_modules, so that `npm ci`
# for users stays small. Recipe and measurements: shared/docs/e2e-code-server.md.
#
# Idempotent: every step checks what is already there (versions, a stamp file) and skips.
# Run as root (CI) or as a developer with sudo for the apt step.
#
#   WLM_E2E_HOME   where code-server is installed (default ~/.cache/workspace-lm-e2e)
set -euo pipefail
# Any failing step stops the setup (and CI) and says which command failed.
trap 'rc=$?; echo "[e2e setup] FAILED (exit $rc) at line $LINENO: $BASH_COMMAND" >&2; exit $rc' ERR

# code-server 4.100.3 = VS Code 1.100.3, the newest that runs on Node 20 (newer needs Node 24).
CODE_SERVER_VERSION=4.100.3
# Pinned by code-server's lib/vscode/npm-shrinkwrap.json (@vscode/ripgrep 1.15.11, whose
# postinstall wants ripgrep release v13.0.0-10). Change them together with CODE_SERVER_VERSION.
VSCODE_RIPGREP_VERSION=1.15.11
RIPGREP_RELEASE=v13.0.0-10
APT_PACKAGES=(libkrb5-dev chromium ripgrep)

E2E_HOME="${WLM_E2E_HOME:-$HOME/.cache/workspace-lm-e2e}"
STAMP="$E2E_HOME/.code-server-$CODE_SERVER_VERSION.ok"

t_start=$(date +%s.%N)
t_step=$t_start
step_done() { # print how long the step took, and restart the step clock
  local now
  now=$(date +%s.%N)
  awk -v a="$t_step" -v b="$now" -v s="$1" 'BEGIN { printf "[e2e setup] %-40s %6.1f s\n", s, b - a }'
  t_step=$now
}
log() { echo "[e2e setup] $*"; }

SUDO=()
if [ "$(id -u)" != 0 ]; then SUDO=(sudo); fi

# --- 1. Debian packages ------------------------------------------------------------------
missing=()
for p in "${APT_PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
  step_done "apt-get update + install"
else
  step_done "apt packages (already installed)"
fi
# Installed is not enough: both must run (a broken chromium would only show in the E2E tests).
chromium_version=$(/usr/bin/chromium --version 2>/dev/null | sed -n 1p)
rg_version=$(rg --version | sed -n 1p)
log "$chromium_version, $rg_version"

# --- 2. code-server into the cache dir ----------------------------------------------------
code_server_ok() {
  [ -f "$STAMP" ] && [ -x "$E2E_HOME/node_modules/.bin/code-server" ] || return 1
  # Any code-server run writes a default config (with a password) under XDG_CONFIG_HOME and
  # logs under XDG_DATA_HOME, and logs "Wrote default config file" before the version line:
  # point both at a throwaway dir, and look for the version line itself.
  local xdg out
  xdg=$(mktemp -d)
  out=$(XDG_CONFIG_HOME="$xdg" XDG_DATA_HOME="$xdg" XDG_CACHE_HOME="$xdg" \
    "$E2E_HOME/node_modules/.bin/code-server" --version 2>/dev/null || true)
  rm -rf "$xdg"
  grep -q "^$CODE_SERVER_VERSION " <<<"$out"
}

if code_server_ok; then
  step_done "code-server $CODE_SERVER_VERSION (already installed)"
else
  mkdir -p "$E2E_HOME/tmp"
  # Everything below runs with one TMPDIR, because @vscode/ripgrep's postinstall looks for its
  # cache under os.tmpdir(): seeding and installing must see the same directory.
  export TMPDIR="$E2E_HOME/tmp"

  # 2a. @vscode/ripgrep's postinstall downloads rg from GitHub, which is unreachable here.
  # It first looks in its cache: put Debian's rg there, as the tarball it would download.
  case "$(uname -m)" in
    x86_64) rg_target=x86_64-unknown-linux-musl ;;
    aarch64) rg_target=aarch64-unknown-linux-musl ;;
    *) echo "unsupported architecture $(uname -m)" >&2; exit 1 ;;
  esac
  rg_cache="$TMPDIR/vscode-ripgrep-cache-$VSCODE_RIPGREP_VERSION"
  rg_tarball="$rg_cache/ripgrep-$RIPGREP_RELEASE-$rg_target.tar.gz"
  if [ ! -s "$rg_tarball" ]; then
    mkdir -p "$rg_cache"
    rg_dir=$(mktemp -d)
    cp "$(command -v rg)" "$rg_dir/rg"
    tar czf "$rg_tarball" -C "$rg_dir" rg # rg must be at the tarball's root
    rm -rf "$rg_dir"
  fi
  step_done "seed @vscode/ripgrep cache"

  # 2b. code-server. Its postinstall runs `npm install` in lib/vscode and lib/vscode/extensions,
  # building native modules (node-pty, spdlog, kerberos, argon2) against the local Node.
  #  - npm_config_unsafe_perm: the postinstall refuses to run as root without it (npm 11 warns
  #    "Unknown env config" about it; harmless).
  #  - npm_config_dangerously_allow_all_scripts: npm 11.19 warns about dependency install
  #    scripts that no package.json "allowScripts" policy covers (its docs say they are
  #    skipped; here they still ran). Skipped, code-server would install without its native
  #    modules and fail only at run time. The nested installs inside code-server have no
  #    policy and only an environment variable reaches them; this prefix holds nothing but one
  #    pinned code-server, so allowing its scripts is the point.
  # Start clean: after an interrupted install npm would see code-server "up to date" and not
  # rerun the postinstall that the half-built tree is missing.
  rm -rf "$E2E_HOME/node_modules" "$E2E_HOME/package-lock.json" "$STAMP"
  echo '{ "name": "workspace-lm-e2e-tools", "private": true }' >"$E2E_HOME/package.json"
  log "npm install code-server@$CODE_SERVER_VERSION into $E2E_HOME (a few minutes)"
  if ! npm_config_yes=true npm_config_unsafe_perm=true npm_config_dangerously_allow_all_scripts=true \
    npm install --prefix "$E2E_HOME" --no-audit --no-fund --save-exact \
    "code-server@$CODE_SERVER_VERSION" >"$E2E_HOME/npm-install.log" 2>&1; then
    tail -n 40 "$E2E_HOME/npm-install.log" >&2
    echo "code-server install failed; full log: $E2E_HOME/npm-install.log" >&2
    exit 1
  fi
  touch "$STAMP"
  if ! code_server_ok; then
    echo "code-server installed but \`code-server --version\` is not $CODE_SERVER_VERSION" >&2
    exit 1
  fi
  step_done "npm install code-server"
fi

log "code-server: $E2E_HOME/node_modules/.bin/code-server ($CODE_SERVER_VERSION)"
t_step=$t_start
step_done total
