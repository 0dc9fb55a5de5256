//! The worker: a steady writer, a session that holds an ephemeral znode,
//! and the control loop that stops or reconnects them.
//!
//! One task, one loop over three sources: the write tick (a fixed schedule
//! of `1 s / rate`; ticks missed while a write waits are skipped, so an
//! outage shows as a gap, not as a burst afterwards), the ephemeral
//! session's state, and the control tick (50 ms: flush the record, renew a
//! lost ephemeral session, answer requests). Writes are sequential: write
//! `seq` is retried on every tick until it is acknowledged, so a retry that
//! finds its znode already there is exactly a duplicate (an earlier attempt
//! that timed out but was applied), and no two writes are in flight.
//!
//! A request made while disconnected waits in zookeeper-client's queue until
//! the session reconnects, and dropping its future does not withdraw it. So
//! every attempt is bounded here (`min(session timeout, 2 s)`) and counted
//! as an error when it runs out; the abandoned attempt may still land, and
//! the retry then sees NodeExists: a duplicate. On reconnect the writer
//! opens a new session, as a restarted client would; the ephemeral session
//! is re-attached (see `session.rs`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::{MissedTickBehavior, interval, timeout};
use tracing::{debug, info, warn};
use zookeeper_client::{Acls, Client, CreateMode, CreateOptions, Error as ZkError, SessionState};

use super::control::{Command, Inbox, ReconnectOutcome, Reply};
use super::record::{Event, EventLog, Run, SessionRole};
use super::session::{Holder, close, connect, open_ephemeral};
use super::{LoadError, StateFiles, WorkerConfig, write_path};

const PERSISTENT: CreateOptions<'static> = CreateMode::Persistent.with_acls(Acls::anyone_all());
const CONTROL_PERIOD: Duration = Duration::from_millis(50);
const MAX_ATTEMPT: Duration = Duration::from_secs(2);

/// Runs the workload until a stop request (see
/// [`request_stop`](super::request_stop)); returns after the final verdict
/// is recorded and both sessions are closed. Runs on any tokio runtime: in
/// the foreground of the CLI's worker process, or on a task in tests.
pub async fn run_worker(cfg: WorkerConfig) -> Result<(), LoadError> {
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.state_dir).map_err(|source| LoadError::Io {
        action: "create the state directory",
        path: cfg.state_dir.clone(),
        source,
    })?;
    let files = StateFiles::new(&cfg.state_dir);
    let inbox = Inbox::claim(&files)?;
    let log = EventLog::create(&files)?;
    let mut worker = Worker::start(cfg, log).await?;
    worker.run(&inbox).await
}

struct Worker {
    cfg: WorkerConfig,
    /// The connection string in use (changed by reconnect).
    connect: String,
    base: String,
    log: EventLog,
    /// `None` after the writer's session ended, until a new one opens.
    writer: Option<Client>,
    holder: Holder,
    next_seq: u64,
    attempt_timeout: Duration,
}

impl Worker {
    async fn start(cfg: WorkerConfig, mut log: EventLog) -> Result<Worker, LoadError> {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let base = format!("{}/r{unix_ms}", cfg.prefix);
        let ephemeral_path = format!("{base}/ephemeral");
        let st = cfg.session_timeout;
        let writer = connect(&cfg.connect, st, None, false).await?;
        writer
            .mkdir(&base, &PERSISTENT)
            .await
            .map_err(|source| LoadError::Zk {
                action: "create",
                path: base.clone(),
                source,
            })?;
        let (client, zxid) = open_ephemeral(&cfg.connect, st, &ephemeral_path).await?;
        let holder = Holder::new(ephemeral_path.clone(), client);
        let run = Run {
            pid: std::process::id(),
            unix_ms,
            connect: cfg.connect.clone(),
            base: base.clone(),
            ephemeral_path,
            rate_per_s: cfg.rate_per_s,
            writer_session: writer.session_id().0,
            ephemeral_session: holder.original,
            zxid,
        };
        info!(
            base = %run.base,
            writer_session = %writer.session_id(),
            ephemeral_session = %format_args!("{:#x}", run.ephemeral_session),
            rate_per_s = cfg.rate_per_s,
            "workload started"
        );
        log.append(&Event::Started(run))?;
        log.sync()?;
        Ok(Worker {
            connect: cfg.connect.clone(),
            attempt_timeout: st.min(MAX_ATTEMPT),
            cfg,
            base,
            log,
            writer: Some(writer),
            holder,
            next_seq: 1,
        })
    }

    async fn run(&mut self, inbox: &Inbox) -> Result<(), LoadError> {
        let mut writes = interval(Duration::from_secs(1) / self.cfg.rate_per_s);
        writes.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut control = interval(CONTROL_PERIOD);
        control.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = writes.tick() => self.write_next().await?,
                state = self.holder.next_state() => self.holder.on_state(state, &mut self.log)?,
                _ = control.tick() => {
                    self.log.flush()?;
                    if self.holder.client.is_none() {
                        self.holder.ensure(&self.connect, self.cfg.session_timeout, &mut self.log).await?;
                    }
                    let mut stopped = false;
                    for (id, request) in inbox.take()? {
                        let reply = match request {
                            _ if stopped => Reply::Refused { reason: "the workload stopped".into() },
                            Ok(Command::Stop) => {
                                self.stop().await?;
                                stopped = true;
                                Reply::Stopped
                            }
                            Ok(Command::Reconnect { connect }) => self.reconnect(connect).await?,
                            Err(reason) => Reply::Refused { reason },
                        };
                        inbox.reply(&id, &reply)?;
                    }
                    if stopped {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// One attempt at write `next_seq`.
    async fn write_next(&mut self) -> Result<(), LoadError> {
        let seq = self.next_seq;
        if let Some(writer) = &self.writer {
            let state = writer.state();
            if state.is_terminated() {
                let session = writer.session_id().0;
                info!(session = %writer.session_id(), %state, "writer session ended");
                if state == SessionState::Expired {
                    let t_ms = self.log.t_ms();
                    self.log.append(&Event::Expired {
                        t_ms,
                        role: SessionRole::Writer,
                        session,
                    })?;
                }
                self.writer = None;
            }
        }
        if self.writer.is_none() {
            match connect(&self.connect, self.cfg.session_timeout, None, false).await {
                Ok(client) => {
                    let t_ms = self.log.t_ms();
                    self.log.append(&Event::Renewed {
                        t_ms,
                        role: SessionRole::Writer,
                        session: client.session_id().0,
                        czxid: None,
                    })?;
                    self.writer = Some(client);
                }
                Err(e) => {
                    let t_ms = self.log.t_ms();
                    let error = e.to_string();
                    return self.log.append(&Event::Failed { seq, t_ms, error });
                }
            }
        }
        let Some(writer) = self.writer.as_ref() else {
            return Ok(());
        };
        let path = write_path(&self.base, seq);
        let data = seq.to_string();
        let attempt = timeout(
            self.attempt_timeout,
            writer.create(&path, data.as_bytes(), &PERSISTENT),
        )
        .await;
        let t_ms = self.log.t_ms();
        let event = match attempt {
            Ok(Ok((stat, _))) => Event::Acked {
                seq,
                t_ms,
                czxid: Some(stat.czxid),
                duplicate: false,
            },
            Ok(Err(ZkError::NodeExists)) => {
                let stat = timeout(self.attempt_timeout, writer.check_stat(&path)).await;
                let czxid = stat.ok().and_then(Result::ok).flatten().map(|s| s.czxid);
                debug!(seq, "retry found its znode: duplicate");
                Event::Acked {
                    seq,
                    t_ms,
                    czxid,
                    duplicate: true,
                }
            }
            Ok(Err(e)) => {
                debug!(seq, error = %e, "write failed");
                Event::Failed {
                    seq,
                    t_ms,
                    error: e.to_string(),
                }
            }
            Err(_) => {
                debug!(seq, "write timed out");
                Event::Failed {
                    seq,
                    t_ms,
                    error: format!("no answer within {:?}", self.attempt_timeout),
                }
            }
        };
        if matches!(event, Event::Acked { .. }) {
            self.next_seq += 1;
        }
        self.log.append(&event)
    }

    /// Switches both sessions to `connect`: a new writer session first (a
    /// string that does not work is refused, and nothing changes), then the
    /// ephemeral session re-attached.
    async fn reconnect(&mut self, connect: String) -> Result<Reply, LoadError> {
        let st = self.cfg.session_timeout;
        let writer = match self::connect(&connect, st, None, false).await {
            Ok(writer) => writer,
            Err(e) => {
                warn!(%connect, error = %e, "reconnect refused");
                return Ok(Reply::Refused {
                    reason: e.to_string(),
                });
            }
        };
        let writer_session = writer.session_id().0;
        // Dropping the old writer (not detached) closes its session.
        self.writer = Some(writer);
        self.connect = connect.clone();
        let ephemeral_kept = self.holder.reattach(&connect, st, &mut self.log).await?;
        let ephemeral_session = self.holder.session().unwrap_or(0);
        let t_ms = self.log.t_ms();
        self.log.append(&Event::Reconnected {
            t_ms,
            connect: connect.clone(),
            writer_session,
            ephemeral_session,
            ephemeral_kept,
        })?;
        self.log.flush()?;
        info!(%connect, ephemeral_kept, "workload reconnected");
        Ok(Reply::Reconnected(ReconnectOutcome {
            writer_session,
            ephemeral_session,
            ephemeral_kept,
        }))
    }

    /// Records the verdict on the ephemeral znode, then closes both sessions.
    async fn stop(&mut self) -> Result<(), LoadError> {
        // The run ends when the request arrives; the check below may wait.
        let t_ms = self.log.t_ms();
        let ephemeral_survived = self.holder.verify(self.cfg.session_timeout).await;
        self.log.append(&Event::Stopped {
            t_ms,
            ephemeral_survived,
        })?;
        self.log.sync()?;
        info!(
            acked_through = self.next_seq - 1,
            ephemeral_survived, "workload stopped"
        );
        if let Some(writer) = self.writer.take() {
            close(writer).await;
        }
        self.holder
            .close(&self.connect, self.cfg.session_timeout)
            .await;
        Ok(())
    }
}
