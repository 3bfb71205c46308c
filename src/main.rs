//! The command line: parse arguments, load the config, hand over to `logout_gateway::prepare`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logout_gateway::config;

/// `--version`: the release and the commit it was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("LGW_COMMIT"), ")");

/// A reverse proxy that takes over OpenID Connect logout in front of an existing provider.
#[derive(Parser)]
#[command(name = "logout-gateway", version = VERSION, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the public proxy listener and the admin listener.
    Run {
        /// Path of proxy.yaml.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
        /// Take the listening sockets of the running instance over `server.upgrade_sock` (send
        /// it SIGQUIT once this one started) instead of binding them.
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate a config file: prints `ok`, or every problem with its key path and line.
    Check {
        /// Path of proxy.yaml.
        #[arg(long, short = 'c', value_name = "FILE")]
        config: PathBuf,
    },
    /// Print the JSON Schema of proxy.yaml (for editors: `# yaml-language-server: $schema=...`).
    Schema,
    /// Probe a running instance's admin listener: exit 0 when the path answers 200 within the
    /// timeout, 1 otherwise (a container HEALTHCHECK on an image without curl).
    Health {
        /// The admin listener, host:port.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9090")]
        admin: String,
        /// The path to ask: /healthz (serving) or /readyz (ready).
        #[arg(long, value_name = "PATH", default_value = "/healthz")]
        path: String,
        /// Give up after this long, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3)]
        timeout: u64,
    },
}

/// glibc's malloc was the largest single cost of a proxied request (perf: about 17% of the
/// process's cycles); mimalloc cuts that (bench/results/passthrough.md).
#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits every arena it reserves at once where the OS overcommits (its option
/// `arena_eager_commit`, default 2: Linux), and such memory is never purged: what start-up
/// allocates and frees (configuration, templates, trust roots) stayed resident, about 10 MiB of
/// an idle gateway's 26 MiB. Committed on demand instead, freed pages go back to the OS after
/// mimalloc's purge delay (docs/performance.md: idle RSS 16 MiB, the same CPU per request).
/// Set by an ELF constructor that runs right after mimalloc's own (priority 101) and before
/// anything allocates; `MIMALLOC_ARENA_EAGER_COMMIT` in the environment still wins.
#[cfg(not(feature = "system-allocator"))]
#[used]
#[link_section = ".init_array.00102"]
static MIMALLOC_LAZY_COMMIT: extern "C" fn() = mimalloc_lazy_commit;

#[cfg(not(feature = "system-allocator"))]
extern "C" fn mimalloc_lazy_commit() {
    /// `mi_option_arena_eager_commit` in the vendored mimalloc v3's `mi_option_t` (Cargo.lock
    /// pins libmimalloc-sys; its mimalloc.h numbers the options).
    const ARENA_EAGER_COMMIT: std::ffi::c_int = 4;
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // SAFETY: getenv reads the environment block (no allocation, nothing else runs yet);
    // mi_option_set stores one integer in mimalloc's option table.
    unsafe {
        if libc::getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() {
            mi_option_set(ARENA_EAGER_COMMIT, 0);
        }
    }
}

/// sysexits EX_CONFIG-adjacent EX_USAGE: the status docs/contract.md gives invalid configs.
const EXIT_CONFIG: u8 = 64;

fn load(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    config::load(path, &config::process_env).map_err(|problems| {
        eprint!("{}", problems.render(&path.display().to_string()));
        ExitCode::from(EXIT_CONFIG)
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { config } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            // Templates are part of the config: compile them too.
            if let Err(e) = logout_gateway::check_templates(&cfg) {
                eprintln!("{}: templates_dir: {e}", config.display());
                return ExitCode::from(EXIT_CONFIG);
            }
            println!("ok");
            ExitCode::SUCCESS
        }
        Command::Schema => {
            println!("{}", config::raw::RawConfig::schema());
            ExitCode::SUCCESS
        }
        Command::Health { admin, path, timeout } => {
            match logout_gateway::health(&admin, &path, std::time::Duration::from_secs(timeout)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("{admin}{path}: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Run { config, upgrade } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match logout_gateway::prepare(cfg, &config, upgrade) {
                Ok(process) => process.run_forever(),
                Err(e) => {
                    eprintln!("{}: {e}", config.display());
                    ExitCode::from(EXIT_CONFIG)
                }
            }
        }
    }
}
