# Shared by scripts/*: install Debian packages only when a command is missing.
need_pkg() { # need_pkg COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 (for $1)..." >&2
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "${LGW_APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq
    export LGW_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$2" >/dev/null
}
