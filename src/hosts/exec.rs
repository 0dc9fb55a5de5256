//! The exec transport (a local command prefix that runs a command "on" a
//! host), and the stdin/stdout/stderr exchange both transports share.

use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{CommandOutput, HostError};
use crate::plan::Server;

/// Runs `sh -c true` through the prefix: an unusable prefix (missing
/// program, unknown host for it) is a connect error, before anything runs.
pub async fn probe(server: &Server, prefix: &[String]) -> Result<(), HostError> {
    let connect_error = |reason: String| HostError::Connect {
        server_id: server.id,
        host: server.host.clone(),
        reason,
    };
    let output = match execute(server, "probe", prefix, &["sh", "-c", "true"], None).await {
        Ok(output) => output,
        Err(e) => return Err(connect_error(e.to_string())),
    };
    match output.success() {
        true => Ok(()),
        false => Err(connect_error(format!(
            "the exec prefix {} exited with status {}: {}",
            render(prefix),
            output.status,
            output.stderr_text()
        ))),
    }
}

/// Runs `prefix` followed by `argv` as a local process.
pub async fn execute(
    server: &Server,
    action: &str,
    prefix: &[String],
    argv: &[&str],
    stdin: Option<&[u8]>,
) -> Result<CommandOutput, HostError> {
    let transport_error = |reason: String| HostError::Transport {
        server_id: server.id,
        host: server.host.clone(),
        action: action.to_string(),
        reason,
    };
    let mut words: Vec<&str> = prefix.iter().map(String::as_str).collect();
    words.extend_from_slice(argv);
    let Some((program, args)) = words.split_first() else {
        return Err(transport_error("empty command".into()));
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .stdin(match stdin {
            Some(_) => Stdio::piped(),
            None => Stdio::null(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|e| {
        transport_error(format!("failed to start the exec prefix {program:?}: {e}"))
    })?;
    let (stdout, stderr) = exchange(
        child.stdin.take(),
        stdin,
        child.stdout.take(),
        child.stderr.take(),
    )
    .await
    .map_err(|e| transport_error(format!("failed to talk to the local process: {e}")))?;
    let status = child
        .wait()
        .await
        .map_err(|e| transport_error(format!("failed to wait for the local process: {e}")))?;
    Ok(CommandOutput {
        status: exit_code(status),
        stdout,
        stderr,
    })
}

/// Writes `input` to `stdin` (then closes it) while reading stdout and
/// stderr to their end, all at once so that no pipe fills up and blocks.
/// A command that exits without reading its input is not an error here:
/// its exit status tells.
pub async fn exchange<W, O, E>(
    stdin: Option<W>,
    input: Option<&[u8]>,
    stdout: Option<O>,
    stderr: Option<E>,
) -> std::io::Result<(Vec<u8>, Vec<u8>)>
where
    W: AsyncWrite + Unpin,
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let write = async {
        if let (Some(mut stdin), Some(input)) = (stdin, input) {
            let written = match stdin.write_all(input).await {
                Ok(()) => stdin.shutdown().await,
                Err(e) => Err(e),
            };
            match written {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e),
                _ => {}
            }
        }
        Ok(())
    };
    let ((), out, err) = tokio::try_join!(write, read_all(stdout), read_all(stderr))?;
    Ok((out, err))
}

async fn read_all<R: AsyncRead + Unpin>(pipe: Option<R>) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if let Some(mut pipe) = pipe {
        pipe.read_to_end(&mut bytes).await?;
    }
    Ok(bytes)
}

/// The exit status as a shell reports it: the code, or 128 + signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn render(prefix: &[String]) -> String {
    prefix
        .iter()
        .map(|w| super::shell_quote(w))
        .collect::<Vec<_>>()
        .join(" ")
}
