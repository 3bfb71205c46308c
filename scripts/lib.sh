# Shared by scripts/*: install Debian packages only when a command is missing.
apt_install() { # apt_install PACKAGE (apt-get update once per run)
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if [ -z "${LGW_APT_UPDATED:-}" ]; then
    $sudo apt-get update -qq
    export LGW_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$1" >/dev/null
}

need_pkg() { # need_pkg COMMAND PACKAGE
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2 (for $1)..." >&2
  apt_install "$2"
}

need_file() { # need_file PATH PACKAGE: a package that ships no command (an Apache module)
  [ -e "$1" ] && return 0
  echo "installing $2 (for $1)..." >&2
  apt_install "$2"
}

# The major version of the `node` on PATH, or nothing.
node_major() {
  command -v node >/dev/null 2>&1 && node -p 'process.versions.node.split(".")[0]' 2>/dev/null
}

# Node.js at least MAJOR (the e2e suite and the demo need 20; Debian 12's nodejs is 18). When
# node is missing or older: Debian's npm (which brings Debian's nodejs), then the official Node
# binary from the npm registry, package node-linux-<arch>@MAJOR (a binary inside a registry
# package: no install script runs, nothing else is downloaded), into LGW_NODE_PREFIX (default
# /usr/local, whose bin/ comes before /usr/bin in PATH). Fails with a clear message otherwise.
need_node() { # need_node MAJOR
  local want="$1" have arch prefix="${LGW_NODE_PREFIX:-/usr/local}" sudo=""
  have="$(node_major)"
  [ "${have:-0}" -ge "$want" ] && return 0
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *)
      echo "error: Node.js >= $want is needed (found ${have:-none}) and the npm registry has no build for $(uname -m); install it, then run again" >&2
      return 1
      ;;
  esac
  need_pkg npm npm
  [ "$(id -u)" -eq 0 ] || [ -w "$prefix" ] || sudo="sudo"
  echo "installing Node.js $want (found ${have:-none}): node-linux-$arch@$want from the npm registry into $prefix..." >&2
  if ! $sudo npm install --global --prefix "$prefix" --ignore-scripts --no-audit --no-fund --loglevel=error "node-linux-$arch@$want"; then
    echo "error: Node.js >= $want is needed (found ${have:-none}); installing node-linux-$arch@$want with npm failed" >&2
    return 1
  fi
  case ":$PATH:" in *":$prefix/bin:"*) ;; *) export PATH="$prefix/bin:$PATH" ;; esac
  hash -r
  have="$(node_major)"
  if [ "${have:-0}" -lt "$want" ]; then
    echo "error: Node.js >= $want is needed; $prefix/bin/node was installed but \`node\` on PATH is still ${have:-none} ($(command -v node)): put $prefix/bin first in PATH" >&2
    return 1
  fi
  echo "using Node.js $(node --version) ($(command -v node))" >&2
}

free_port() { # a TCP port nothing listens on now
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_for() { # wait_for WHAT SECONDS COMMAND...: poll COMMAND until it succeeds or time runs out
  local what=$1 secs=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "timed out after ${secs}s waiting for $what" >&2; return 1; fi
    sleep 0.1
  done
}
