//! `zkmigrate init` against the lab's ensemble (issue 7's acceptance): run
//! from the operator machine, with the ssh access, config path and service
//! script an operator of these hosts knows, it writes a plan that
//! `zkmigrate plan` (online: it reads the hosts over ssh and the cluster)
//! accepts with nothing changed but the Kubernetes target; and the plan's
//! ensemble is the one `zklab up` wrote for the lab.

mod common;

use common::{Lab, text};
use zklab::topology::Target;
use zkmigrate::plan::{self, Access};
use zkmigrate::steps::StepName;

/// `text` with its top-level `kubernetes:` section (to the next top-level
/// key) replaced by the one of `from`.
fn with_kubernetes_of(text: &str, from: &str) -> String {
    fn section(text: &str) -> (usize, usize) {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        let start = lines
            .iter()
            .position(|l| l.starts_with("kubernetes:"))
            .expect("a kubernetes section");
        let end = (start + 1..lines.len())
            .find(|&i| {
                let l = lines[i];
                !l.starts_with([' ', '#', '\n'])
            })
            .unwrap_or(lines.len());
        let offset = |i: usize| lines[..i].iter().map(|l| l.len()).sum::<usize>();
        (offset(start), offset(end))
    }
    let (a, b) = section(text);
    let (c, d) = section(from);
    format!("{}{}{}", &text[..a], &from[c..d], &text[b..])
}

#[test]
fn init_against_the_lab_writes_a_plan_that_plan_accepts_but_for_the_kubernetes_target() {
    let lab = Lab::up(
        &format!("in{}", std::process::id() % 100_000),
        Target::PerServer,
    );
    let lab_plan_file = lab.plan();
    let lab_plan = plan::load(std::path::Path::new(&lab_plan_file)).unwrap();
    let Access::Ssh(ssh) = &lab_plan.ensemble.access else {
        panic!("the lab's hosts are reached over ssh")
    };
    let script = lab_plan
        .ensemble
        .service
        .start
        .strip_suffix(" start")
        .expect("the lab's service script");

    // What the operator knows of the hosts, and the servers by the names
    // the operator reaches them by (init keeps a name it reached a server
    // by as the ssh host).
    let connect = lab_plan
        .servers
        .iter()
        .map(|s| format!("{}:{}", s.host, lab_plan.ensemble.client_port))
        .collect::<Vec<_>>()
        .join(",");
    let written = lab.layout.root.join("init-plan.yaml");
    let mut args = vec![
        "init".to_string(),
        "--connect".into(),
        connect,
        "--name".into(),
        lab.layout.name.clone(),
        "--namespace".into(),
        lab_plan.kubernetes.namespace.clone(),
        "--ssh-user".into(),
        ssh.user.clone().unwrap(),
        "--ssh-identity-file".into(),
        ssh.identity_file.clone().unwrap(),
        "--config-path".into(),
        lab_plan.ensemble.config_path.clone(),
        "--service-script".into(),
        script.to_string(),
        "-o".into(),
        written.display().to_string(),
    ];
    for option in &ssh.options {
        args.extend(["--ssh-option".to_string(), option.clone()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lab.zkmigrate(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The ensemble as init read it is the lab's: servers, ports, access,
    // config path, service commands.
    let init_plan = plan::load(&written).unwrap();
    assert_eq!(init_plan.servers, lab_plan.servers);
    assert_eq!(init_plan.ensemble, lab_plan.ensemble);

    // Only the Kubernetes target changed, `plan` accepts it, reading the
    // live ensemble, the hosts and the cluster.
    let init_text = std::fs::read_to_string(&written).unwrap();
    let lab_text = std::fs::read_to_string(&lab_plan_file).unwrap();
    let edited = with_kubernetes_of(&init_text, &lab_text);
    std::fs::write(&written, &edited).unwrap();
    let path = written.display().to_string();
    let out = lab.zkmigrate(&["plan", "-f", &path]);
    assert_eq!(out.status.code(), Some(0), "{}\n{edited}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    for step in StepName::ALL {
        assert!(shown.contains(step.as_str()), "{shown}");
    }
    let accepted = plan::load(&written).unwrap();
    assert_eq!(accepted.kubernetes, lab_plan.kubernetes);
}

#[test]
fn the_kubernetes_section_is_swapped_whole() {
    let a = "name: a\nkubernetes:\n  namespace: x\n  # note\n\nclients: {}\n";
    let b = "name: b\nkubernetes:\n  namespace: y\n  target: {}\npolicy: {}\n";
    assert_eq!(
        with_kubernetes_of(a, b),
        "name: a\nkubernetes:\n  namespace: y\n  target: {}\nclients: {}\n"
    );
}
