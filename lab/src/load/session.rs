//! The worker's sessions: opening, re-attaching and closing them, and the
//! holder of the long-lived session that owns the ephemeral znode.
//!
//! What zookeeper-client 0.11 allows, and how it is used here:
//! - `Connector::with_session(info)` re-attaches to a live session (id and
//!   password) through any connection string. The holder's client is
//!   `detached`, so dropping it closes only the TCP connection, never the
//!   session. To move, the old client is dropped first and awaited to
//!   `Closed` (a live old client would reconnect and take the session back),
//!   then the session is re-attached through the new string: the ephemeral
//!   znode keeps its owner across the switch.
//! - A re-attach answered `SessionExpired` means the servers expired it; a
//!   client that found no server for 1.4 x the session timeout also reports
//!   `Expired` (it gives up). Both count as expirations.
//! - A detached session is closed by re-attaching a non-detached client and
//!   dropping it: the client then sends CloseSession.

use std::time::Duration;

use tokio::time::timeout;
use tracing::{debug, info, warn};
use zookeeper_client::{
    Acls, Client, CreateMode, CreateOptions, Error as ZkError, SessionInfo, SessionState,
    StateWatcher,
};

use super::LoadError;
use super::record::{Event, EventLog, SessionRole};

const EPHEMERAL: CreateOptions<'static> = CreateMode::Ephemeral.with_acls(Acls::anyone_all());
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The second session and its ephemeral znode.
pub(super) struct Holder {
    path: String,
    /// The session that created the znode at the start.
    pub(super) original: i64,
    pub(super) client: Option<Client>,
    watcher: Option<StateWatcher>,
    /// A session to re-attach before opening a new one.
    resume: Option<SessionInfo>,
}

impl Holder {
    pub(super) fn new(path: String, client: Client) -> Holder {
        Holder {
            path,
            original: client.session_id().0,
            watcher: Some(client.state_watcher()),
            client: Some(client),
            resume: None,
        }
    }

    pub(super) fn session(&self) -> Option<i64> {
        self.client.as_ref().map(|c| c.session_id().0)
    }

    fn set_client(&mut self, client: Client) {
        self.watcher = Some(client.state_watcher());
        self.client = Some(client);
    }

    pub(super) async fn next_state(&mut self) -> SessionState {
        match self.watcher.as_mut() {
            Some(watcher) => watcher.changed().await,
            None => std::future::pending().await,
        }
    }

    pub(super) fn on_state(
        &mut self,
        state: SessionState,
        log: &mut EventLog,
    ) -> Result<(), LoadError> {
        if !state.is_terminated() {
            debug!(%state, "ephemeral session state");
            return Ok(());
        }
        let Some(client) = self.client.take() else {
            return Ok(());
        };
        self.watcher = None;
        info!(session = %client.session_id(), %state, "ephemeral session ended");
        if state == SessionState::Expired {
            let t_ms = log.t_ms();
            log.append(&Event::Expired {
                t_ms,
                role: SessionRole::Ephemeral,
                session: client.session_id().0,
            })?;
        } else {
            self.resume = Some(client.into_session());
        }
        Ok(())
    }

    /// Gets a session again: the one to resume if it still lives, else a
    /// new one with a new ephemeral znode. Failures are retried on a later
    /// control tick.
    pub(super) async fn ensure(
        &mut self,
        connect: &str,
        st: Duration,
        log: &mut EventLog,
    ) -> Result<(), LoadError> {
        if let Some(info) = self.resume.take() {
            let id = info.id().0;
            match self::connect(connect, st, Some(info.clone()), true).await {
                Ok(client) => {
                    self.set_client(client);
                    return Ok(());
                }
                Err(LoadError::Connect {
                    source: ZkError::SessionExpired,
                    ..
                }) => {
                    let t_ms = log.t_ms();
                    log.append(&Event::Expired {
                        t_ms,
                        role: SessionRole::Ephemeral,
                        session: id,
                    })?;
                }
                Err(e) => {
                    warn!(error = %e, "failed to re-attach the ephemeral session; will retry");
                    self.resume = Some(info);
                    return Ok(());
                }
            }
        }
        match open_ephemeral(connect, st, &self.path).await {
            Ok((client, czxid)) => {
                let t_ms = log.t_ms();
                log.append(&Event::Renewed {
                    t_ms,
                    role: SessionRole::Ephemeral,
                    session: client.session_id().0,
                    czxid: Some(czxid),
                })?;
                self.set_client(client);
            }
            Err(e) => warn!(error = %e, "failed to open a new ephemeral session; will retry"),
        }
        Ok(())
    }

    /// Moves the session to `connect`; whether it kept its id and znode.
    pub(super) async fn reattach(
        &mut self,
        connect: &str,
        st: Duration,
        log: &mut EventLog,
    ) -> Result<bool, LoadError> {
        if let Some(client) = self.client.take() {
            self.watcher = None;
            self.resume = Some(release(client).await);
        }
        self.ensure(connect, st, log).await?;
        Ok(self.verify(st).await)
    }

    /// Whether the original session still owns the ephemeral znode, asked
    /// through that session after a `sync`.
    pub(super) async fn verify(&self, st: Duration) -> bool {
        let Some(client) = &self.client else {
            return false;
        };
        if client.session_id().0 != self.original {
            return false;
        }
        let check = async {
            client.sync(&self.path).await?;
            client.check_stat(&self.path).await
        };
        match timeout(st, check).await {
            Ok(Ok(Some(stat))) => stat.ephemeral_owner == self.original,
            Ok(Ok(None)) => false,
            Ok(Err(e)) => {
                warn!(error = %e, "failed to check the ephemeral znode");
                false
            }
            Err(_) => {
                warn!("failed to check the ephemeral znode in time");
                false
            }
        }
    }

    /// Closes the (detached) session: re-attach without `detached`, drop.
    pub(super) async fn close(&mut self, connect: &str, st: Duration) {
        let Some(client) = self.client.take() else {
            return;
        };
        self.watcher = None;
        let info = release(client).await;
        match self::connect(connect, st, Some(info), false).await {
            Ok(client) => close(client).await,
            Err(e) => warn!(error = %e, "failed to close the ephemeral session; it will expire"),
        }
    }
}

/// Opens a session (resuming `resume` when given) within twice the session
/// timeout.
pub(super) async fn connect(
    connect: &str,
    session_timeout: Duration,
    resume: Option<SessionInfo>,
    detached: bool,
) -> Result<Client, LoadError> {
    let mut connector = Client::connector().with_session_timeout(session_timeout);
    if let Some(info) = resume {
        connector = connector.with_session(info);
    }
    if detached {
        connector = connector.with_detached();
    }
    let bound = session_timeout * 2;
    match timeout(bound, connector.connect(connect)).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(source)) => Err(LoadError::Connect {
            connect: connect.to_string(),
            source,
        }),
        Err(_) => Err(LoadError::ConnectTimeout {
            connect: connect.to_string(),
            timeout: bound,
        }),
    }
}

/// A new detached session owning a new ephemeral znode at `path`; returns
/// it with the znode's czxid. A znode left by a session the client gave up
/// on (but the servers may not have expired yet) is replaced.
pub(super) async fn open_ephemeral(
    connect_string: &str,
    st: Duration,
    path: &str,
) -> Result<(Client, i64), LoadError> {
    let client = connect(connect_string, st, None, true).await?;
    let zk = |action, source| LoadError::Zk {
        action,
        path: path.to_string(),
        source,
    };
    let created = match client.create(path, b"", &EPHEMERAL).await {
        Err(ZkError::NodeExists) => {
            match client.delete(path, None).await {
                Ok(()) | Err(ZkError::NoNode) => {}
                Err(e) => return Err(zk("delete the stale ephemeral", e)),
            }
            client.create(path, b"", &EPHEMERAL).await
        }
        other => other,
    };
    let (stat, _) = created.map_err(|e| zk("create the ephemeral", e))?;
    Ok((client, stat.czxid))
}

/// Drops a detached client and waits until its connection is gone (so it
/// cannot reconnect and take the session back); returns the session.
async fn release(client: Client) -> SessionInfo {
    let mut watcher = client.state_watcher();
    let info = client.into_session();
    wait_terminated(&mut watcher).await;
    info
}

/// Drops a client (a non-detached one sends CloseSession) and waits, a
/// bounded time, until it has.
pub(super) async fn close(client: Client) {
    let mut watcher = client.state_watcher();
    drop(client);
    wait_terminated(&mut watcher).await;
}

async fn wait_terminated(watcher: &mut StateWatcher) {
    let wait = async {
        while !watcher.peek_state().is_terminated() {
            watcher.changed().await;
        }
    };
    if timeout(CLOSE_WAIT, wait).await.is_err() {
        warn!("a session did not close within {CLOSE_WAIT:?}");
    }
}
