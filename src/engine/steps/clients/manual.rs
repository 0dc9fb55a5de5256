//! Step `clients` by hand: the new connection string, the inventory of who
//! is connected where (`cons` per server), and the operator's go-ahead.

use crate::engine::action::Action;
use crate::runbook::{Manual, Shell};

pub fn intro(sh: &Shell) -> String {
    format!(
        "Clients move to the Service names. Old and new connection strings both work until \
         the replace step; nothing restarts on the ZooKeeper side. Today's string: `{}`.\n",
        sh.plan.current_connection_string()
    )
}

pub fn manual(sh: &Shell, action: &Action) -> Manual {
    let plan = sh.plan;
    match action {
        Action::ShowConnectionString => Manual {
            expect: format!(
                "configure every client with `{}`.",
                plan.service_connection_string()
            ),
            ..Manual::default()
        },
        Action::ClientInventory => Manual {
            run: Some(
                plan.servers
                    .iter()
                    .map(|s| format!("echo '# server {}'; {}", s.id, sh.host_word(s.id, "cons")))
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            expect: "one line per session, `/CLIENT_ADDRESS:PORT[...](queued=...,...)`, per \
                     server: the clients to move. zkmigrate prints the same as a table, sessions \
                     counted per client address and server."
                .into(),
            ..Manual::default()
        },
        Action::AwaitClientsConfirmed => Manual {
            about: "Restart (or reconfigure) every client with the new connection string, \
                        one at a time, as you would for any config change. Each client then \
                        resolves the Service names and connects through the ClusterIPs."
                .into(),
            expect: format!(
                "each client connected again; its sessions now come from the same client \
                     addresses (run the inventory again; the list cannot tell which string a \
                     client used, so check the clients' own config). With zkmigrate, `{}` \
                     records the confirmation in its journal.",
                sh.zkmigrate("step", "--confirm clients")
            ),
            undo: "point the clients back at the old connection string (it keeps working \
                       until the replace step)."
                .into(),
            ..Manual::default()
        },
        _ => Manual::default(),
    }
}
