//! The `zklab` command (DESIGN section 8): build, inspect, fault and tear
//! down labs. Each subcommand is a thin call into the library.

use std::process::{Command, ExitCode};

use clap::{Parser, Subcommand};
use zklab::LabError;
use zklab::layout::{Layout, Machine};
use zklab::topology::{self, Target};
use zklab::{fault, host, netns};

/// A lab to rehearse and prove zkmigrate: bare-metal hosts in network
/// namespaces reached over SSH, running a real ZooKeeper ensemble.
#[derive(Debug, Parser)]
#[command(name = "zklab", version)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, clap::Args)]
struct NameArg {
    /// The lab's name (several labs can run side by side).
    #[arg(long, default_value = "lab", global = true)]
    name: String,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a lab and print the path of its plan file.
    Up {
        #[command(flatten)]
        name: NameArg,
        /// Number of ZooKeeper hosts.
        #[arg(long, default_value_t = 3)]
        servers: u8,
        /// The Kubernetes target the plan asks for.
        #[arg(long, value_enum, default_value = "StatefulSet")]
        target: Target,
    },
    /// The demo: build a lab, start the workload, migrate it into
    /// Kubernetes with zkmigrate (moving the workload's clients at the
    /// clients step), print the workload's report JSON and a summary, tear
    /// the lab down. Exit 0 when no acknowledged write was lost.
    Demo {
        #[command(flatten)]
        name: NameArg,
        /// Number of ZooKeeper hosts.
        #[arg(long, default_value_t = 3)]
        servers: u8,
        /// The Kubernetes target the plan asks for.
        #[arg(long, value_enum, default_value = "StatefulSet")]
        target: Target,
        /// Make this server the leader before the workload starts.
        #[arg(long, value_name = "N")]
        leader: Option<u8>,
        /// The zkmigrate executable (default: beside zklab, or $ZKMIGRATE_BIN).
        #[arg(long, value_name = "PATH")]
        zkmigrate: Option<std::path::PathBuf>,
        /// Leave the lab up at the end.
        #[arg(long)]
        keep: bool,
    },
    /// Stop every process and remove every namespace and file of a lab.
    /// Safe to repeat, and after a crash.
    Down {
        #[command(flatten)]
        name: NameArg,
    },
    /// Hosts: ZooKeeper mode and zxid, service state, partitions.
    Status {
        #[command(flatten)]
        name: NameArg,
    },
    /// Run a command inside a lab machine.
    Run {
        #[command(flatten)]
        name: NameArg,
        /// ops, client, cp or hostK.
        #[arg(long, default_value = "ops")]
        on: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// (internal) The lab's control plane, run by `up` in the control-plane
    /// machine.
    #[command(hide = true)]
    Controlplane {
        #[command(flatten)]
        name: NameArg,
        #[arg(long)]
        servers: u8,
    },
    /// The workload: a steady writer plus a session holding an ephemeral
    /// znode, in the client machine.
    Load {
        #[command(flatten)]
        name: NameArg,
        #[command(subcommand)]
        load: LoadCmd,
    },
    /// Inject a fault.
    Fault {
        #[command(flatten)]
        name: NameArg,
        #[command(subcommand)]
        fault: FaultCmd,
    },
}

#[derive(Debug, Subcommand)]
enum LoadCmd {
    /// Start writing (default: to the hosts' addresses).
    Start {
        /// Connection string (default: every host's address, port 2181).
        #[arg(long)]
        connect: Option<String>,
        /// Writes per second.
        #[arg(long, default_value_t = zklab::load::DEFAULT_RATE_PER_S)]
        rate: u32,
    },
    /// Stop writing; the worker checks its ephemeral znode first.
    Stop,
    /// Print the report JSON (DESIGN section 8).
    Report,
    /// Switch the workload's clients to a new connection string.
    Reconnect {
        #[arg(long)]
        connect: String,
    },
    /// (internal) The worker process itself.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        state: std::path::PathBuf,
        #[arg(long)]
        connect: String,
        #[arg(long)]
        rate: u32,
    },
    /// (internal) The report's read-back, run inside the client machine.
    #[command(hide = true)]
    Score {
        #[arg(long)]
        state: std::path::PathBuf,
        #[arg(long)]
        connect: String,
    },
}

#[derive(Debug, Subcommand)]
enum FaultCmd {
    /// Drop every packet in and out of a machine or a Pod: iptables rules in
    /// a chain of zklab's own (ZKLAB-FAULT) inside its network namespace.
    /// Loopback keeps working.
    #[command(
        after_help = "Examples:\n  zklab fault partition host2\n  zklab fault partition pod/zk-1 --namespace zookeeper"
    )]
    Partition {
        /// hostK, ops, client, cp, or pod/NAME (a Pod the lab's kubelet runs).
        target: String,
        /// The Kubernetes namespace of a pod/NAME target.
        #[arg(long, default_value = "zookeeper")]
        namespace: String,
    },
    /// Undo a partition: flush zklab's chain in the machine's or Pod's
    /// network namespace. Healing what is not partitioned is harmless.
    Heal {
        /// hostK, ops, client, cp, or pod/NAME.
        target: String,
        /// The Kubernetes namespace of a pod/NAME target.
        #[arg(long, default_value = "zookeeper")]
        namespace: String,
    },
    /// SIGKILL a host's ZooKeeper (the service stays enabled).
    Kill {
        /// hostK.
        machine: String,
    },
    /// Make the lab's registry lose an image (`--missing`) or have it again
    /// (`--restore`): the next pull of it fails with ErrImagePull, then
    /// ImagePullBackOff; running containers are not touched.
    Image {
        /// The image, as a Pod names it (e.g. zookeeper:3.8).
        image: String,
        /// Have it again.
        #[arg(long)]
        restore: bool,
    },
    /// Drop every ssh connection to a host (its per-connection sshd
    /// processes are killed; the listener stays).
    DropSsh {
        /// hostK.
        host: String,
    },
    /// Make the lab's API server fail or slow for a while.
    ///
    /// Matching resource requests are answered with --status (a Status
    /// object worded as the real API server's: 500 InternalError, 503
    /// ServiceUnavailable, 429 TooManyRequests with `Retry-After: 1`, 409
    /// Conflict "the object has been modified"), or delayed by --slow, or
    /// both, for --for seconds. Discovery (/api, /apis, /version, /openapi),
    /// health and /metrics are never affected. A new fault replaces the
    /// previous one; --clear ends it at once. The fault is the file
    /// <lab>/faults/api.json, which the API server reads per request.
    #[command(
        group(clap::ArgGroup::new("what").required(true).multiple(true).args(["status", "slow", "clear"])),
        after_help = "Examples:\n  zklab fault api --status 500 --for 10\n  zklab fault api --status 409 --for 30 --every 3 --verbs patch,update\n  zklab fault api --slow 300 --for 20\n  zklab fault api --clear"
    )]
    Api {
        /// Answer matching requests with this HTTP status: 500, 503, 429 or 409.
        #[arg(long, value_name = "CODE")]
        status: Option<u16>,
        /// Delay every matching request by this many milliseconds.
        #[arg(long, value_name = "MS")]
        slow: Option<u64>,
        /// How long the fault lasts, in seconds.
        #[arg(
            long = "for",
            value_name = "SECONDS",
            required_unless_present = "clear"
        )]
        for_secs: Option<u64>,
        /// Fail only every Nth matching request (with --status).
        #[arg(long, value_name = "N", default_value_t = 1, requires = "status")]
        every: u32,
        /// Only requests with these verbs (comma-separated): get, list, watch,
        /// create, update, patch, delete, deletecollection. Default: all.
        #[arg(long, value_name = "VERBS", value_delimiter = ',')]
        verbs: Vec<String>,
        /// End any API fault now.
        #[arg(long, conflicts_with_all = ["status", "slow", "for_secs", "verbs"])]
        clear: bool,
    },
    /// Make a host's ZooKeeper fail to start: its service script's `start`
    /// (and the start half of `restart`) prints an error, starts nothing and
    /// exits 1, and `status` says stopped, until fix-start. A running
    /// ZooKeeper keeps running.
    BreakStart {
        /// hostK.
        host: String,
    },
    /// Undo break-start (starts nothing itself).
    FixStart {
        /// hostK.
        host: String,
    },
    /// Make server N the leader of the hosts' ensemble (3, 5, ... hosts).
    ///
    /// ZooKeeper has no leader transfer: zklab stops the servers outside a
    /// bare quorum around N, writes once through that quorum, stops the
    /// rest of it and starts the others, so that N holds the highest zxid
    /// and wins; then it restarts everyone and waits until N leads with
    /// every follower synced. Prints the leader.
    Elect {
        /// The server (host number) to make the leader.
        #[arg(long, value_name = "N")]
        server: u8,
        /// Bound of each wait, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 60)]
        timeout: u64,
    },
}

fn main() -> ExitCode {
    tracing_subscriber_init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(LabError::Usage(msg)) => {
            eprintln!("zklab: {msg}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("zklab: {e}");
            ExitCode::from(1)
        }
    }
}

/// Logs on stderr, filtered by ZKLAB_LOG (default `zklab=info`).
fn tracing_subscriber_init() {
    let filter = std::env::var("ZKLAB_LOG").unwrap_or_else(|_| "zklab=info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn machine(s: &str) -> Result<Machine, LabError> {
    Machine::parse(s).ok_or_else(|| {
        LabError::Usage(format!(
            "unknown machine {s:?}: use ops, client, cp or hostK"
        ))
    })
}

fn host_index(m: Machine) -> Result<u8, LabError> {
    match m {
        Machine::Host(k) => Ok(k),
        other => Err(LabError::Usage(format!(
            "{} is not a ZooKeeper host",
            other.short()
        ))),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, LabError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| LabError::Io {
            what: "start the async runtime".into(),
            source,
        })
}

fn run_load(layout: &Layout, cmd: LoadCmd) -> Result<ExitCode, LabError> {
    use zklab::{load, workload};
    match cmd {
        LoadCmd::Start { connect, rate } => {
            let run = workload::start(layout, connect, rate)?;
            eprintln!(
                "workload started (pid {}, {} writes/s to {})",
                run.pid, run.rate_per_s, run.connect
            );
        }
        LoadCmd::Stop => {
            workload::stop(layout)?;
            eprintln!("workload stopped");
        }
        LoadCmd::Report => print!("{}", workload::report(layout)?),
        LoadCmd::Reconnect { connect } => {
            let outcome = workload::reconnect(layout, &connect)?;
            eprintln!(
                "workload switched to {connect} (ephemeral session kept: {})",
                outcome.ephemeral_kept
            );
        }
        LoadCmd::Worker {
            state,
            connect,
            rate,
        } => {
            let mut cfg = load::WorkerConfig::new(connect, state);
            cfg.rate_per_s = rate;
            runtime()?
                .block_on(load::run_worker(cfg))
                .map_err(|e| LabError::Stuck(e.to_string()))?;
        }
        LoadCmd::Score { state, connect } => {
            let report = runtime()?
                .block_on(load::report(&state, &connect))
                .map_err(|e| LabError::Stuck(e.to_string()))?;
            let json =
                serde_json::to_string(&report).map_err(|e| LabError::Stuck(e.to_string()))?;
            println!("{json}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> Result<ExitCode, LabError> {
    match cli.command {
        Cmd::Up {
            name,
            servers,
            target,
        } => {
            let layout = Layout::new(&name.name)?;
            let started = std::time::Instant::now();
            let state = topology::up(&layout, servers, target)?;
            eprintln!(
                "lab {} is up: {} hosts with quorum, in {:.1} s",
                state.name,
                state.servers,
                started.elapsed().as_secs_f64()
            );
            println!("plan: {}", state.plan);
            println!("kubeconfig: {}", state.kubeconfig);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo {
            name,
            servers,
            target,
            leader,
            zkmigrate,
            keep,
        } => {
            let layout = Layout::new(&name.name)?;
            let opts = zklab::demo::DemoOptions {
                servers,
                target,
                leader,
                zkmigrate: match zkmigrate {
                    Some(path) => path,
                    None => zklab::demo::find_zkmigrate()?,
                },
                keep,
            };
            let outcome = zklab::demo::run(&layout, &opts)?;
            eprintln!("== report");
            println!("{}", outcome.report);
            eprintln!(
                "\n{}",
                zklab::demo::summary(&outcome.report, outcome.elapsed)
            );
            Ok(if zklab::demo::succeeded(&outcome.report) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Down { name } => {
            let layout = Layout::new(&name.name)?;
            topology::down(&layout)?;
            eprintln!("lab {} is down", layout.name);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Status { name } => {
            let layout = Layout::new(&name.name)?;
            let state = topology::load_state(&layout)?;
            println!(
                "lab {} ({} hosts), plan {}",
                state.name, state.servers, state.plan
            );
            println!(
                "{:<8} {:<12} {:<10} {:<14} {:<10} NETWORK",
                "HOST", "ADDRESS", "MODE", "ZXID", "SERVICE"
            );
            for k in 1..=state.servers {
                let m = Machine::Host(k);
                let srvr = netns::four_letter_word(
                    &layout.ns(Machine::Ops),
                    (m.addr(), 2181).into(),
                    "srvr",
                )
                .unwrap_or_default();
                let field = |key: &str| {
                    srvr.lines()
                        .find_map(|l| l.strip_prefix(key))
                        .map(|v| v.trim().to_string())
                        .unwrap_or_else(|| "-".into())
                };
                let service = host::sh_on(
                    &layout,
                    k,
                    &format!("{} status; {} is-enabled", host::SERVICE, host::SERVICE),
                )
                .unwrap_or_else(|e| match e {
                    LabError::Command { .. } => "stopped".into(),
                    _ => "unknown".into(),
                });
                let service = if service.contains("is running") {
                    "running"
                } else if service.contains("disabled") {
                    "disabled"
                } else {
                    "stopped"
                };
                let network = if fault::is_partitioned(&layout, m)? {
                    "partitioned"
                } else {
                    "ok"
                };
                println!(
                    "{:<8} {:<12} {:<10} {:<14} {:<10} {}",
                    m.short(),
                    m.addr().to_string(),
                    field("Mode: "),
                    field("Zxid: "),
                    service,
                    network
                );
            }
            // The cluster side, as kubectl on the operator machine sees it
            // (skipped where kubectl is not installed).
            if netns::run("sh", &["-c", "command -v kubectl"]).is_ok() {
                println!();
                let _ = Command::new("ip")
                    .args(["netns", "exec", &layout.ns(Machine::Ops)])
                    .args(["kubectl", "--kubeconfig", &state.kubeconfig])
                    .args([
                        "get",
                        "statefulsets,pods,services,endpointslices",
                        "-n",
                        "zookeeper",
                        "-o",
                        "wide",
                    ])
                    .status();
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run { name, on, command } => {
            let layout = Layout::new(&name.name)?;
            topology::load_state(&layout)?;
            let m = machine(&on)?;
            let mut cmd = match m {
                Machine::Host(k) => host::command_on(&layout, k, &command)?,
                other => {
                    let mut c = Command::new("ip");
                    c.args(["netns", "exec", &layout.ns(other)]).args(&command);
                    c
                }
            };
            let status = cmd.status().map_err(|source| LabError::Spawn {
                command: command.join(" "),
                source,
            })?;
            Ok(ExitCode::from(
                status.code().unwrap_or(1).clamp(0, 255) as u8
            ))
        }
        Cmd::Controlplane { name, servers } => {
            let layout = Layout::new(&name.name)?;
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|source| LabError::Io {
                    what: "start the async runtime".into(),
                    source,
                })?
                .block_on(zklab::k8s::controlplane::run(layout, servers))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Load { name, load } => run_load(&Layout::new(&name.name)?, load),
        Cmd::Fault { name, fault } => {
            let layout = Layout::new(&name.name)?;
            let state = topology::load_state(&layout)?;
            let host = |s: &str| -> Result<u8, LabError> {
                let k = host_index(machine(s)?)?;
                fault::check_host(&layout, state.servers, k)?;
                Ok(k)
            };
            match fault {
                FaultCmd::Partition { target, namespace } => {
                    let ns = fault::Target::parse(&target, &namespace)?.netns(&layout)?;
                    fault::partition_ns(&ns)?;
                    eprintln!("{target} is partitioned (namespace {ns})");
                }
                FaultCmd::Heal { target, namespace } => {
                    let ns = fault::Target::parse(&target, &namespace)?.netns(&layout)?;
                    fault::heal_ns(&ns)?;
                    eprintln!("{target} is healed (namespace {ns})");
                }
                FaultCmd::Kill { machine: m } => fault::kill_zookeeper(&layout, host(&m)?)?,
                FaultCmd::Image { image, restore } => {
                    fault::set_image_missing(&layout, &image, !restore)?;
                    eprintln!(
                        "image {image}: {}",
                        if restore {
                            "in the registry again"
                        } else {
                            "missing from the registry"
                        }
                    );
                }
                FaultCmd::DropSsh { host: m } => {
                    let dropped = fault::drop_ssh(&layout, host(&m)?)?;
                    println!("{m}: {dropped} ssh connection(s) dropped");
                }
                FaultCmd::Api {
                    status,
                    slow,
                    for_secs,
                    every,
                    verbs,
                    clear,
                } => {
                    if clear {
                        fault::api::clear(&layout)?;
                        eprintln!("the API server serves normally");
                    } else {
                        let duration = std::time::Duration::from_secs(for_secs.unwrap_or(0));
                        let request = fault::api::ApiFaultRequest {
                            status,
                            slow: slow.map(std::time::Duration::from_millis),
                            duration,
                            every,
                            verbs,
                        };
                        let written = fault::api::inject(&layout, &request)?;
                        eprintln!("{}", fault::api::describe(&written, duration));
                    }
                }
                FaultCmd::BreakStart { host: h } => {
                    let k = host(&h)?;
                    fault::break_start(&layout, k)?;
                    eprintln!(
                        "host{k}'s ZooKeeper will fail to start until `zklab fault fix-start host{k}`"
                    );
                }
                FaultCmd::FixStart { host: h } => {
                    let k = host(&h)?;
                    fault::fix_start(&layout, k)?;
                    eprintln!("host{k}'s ZooKeeper starts normally again (nothing was started)");
                }
                FaultCmd::Elect { server, timeout } => {
                    let leader = fault::elect::elect(
                        &layout,
                        state.servers,
                        server,
                        std::time::Duration::from_secs(timeout),
                    )?;
                    println!("leader: server {leader} (host{leader})");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
