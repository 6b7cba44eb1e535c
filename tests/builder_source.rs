//! libgit2 clones against a real `git daemon` and a local repository: shallow when possible,
//! deeper only for a commit below the tip, and source info from the commit.

mod support;

use kiln::builder::source::{self, CloneRequest};
use support::{git, GitDaemon};

/// A repository with `n` commits on main (file `f` holds the commit number) and tag `t1` on the first.
fn repo(base: &std::path::Path, n: usize) -> Vec<String> {
    let work = base.join("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    let mut commits = Vec::new();
    for i in 1..=n {
        std::fs::write(work.join("f"), format!("{i}\n")).unwrap();
        git(&work, &["add", "f"]);
        git(
            &work,
            &["commit", "-q", "-m", &format!("commit {i}\n\nbody {i}")],
        );
        commits.push(git(&work, &["rev-parse", "HEAD"]));
        if i == 1 {
            git(&work, &["tag", "t1"]);
        }
    }
    git(base, &["clone", "-q", "--bare", "work", "r.git"]);
    commits
}

fn request(
    url: &str,
    r#ref: Option<&str>,
    commit: Option<&str>,
    dest: &std::path::Path,
) -> CloneRequest {
    CloneRequest {
        url: url.to_string(),
        ref_: r#ref.map(str::to_string),
        commit: commit.map(str::to_string),
        dest: dest.to_path_buf(),
        ..Default::default()
    }
}

#[test]
fn shallow_clone_deepens_only_for_an_older_commit() {
    let base = tempfile::tempdir().unwrap();
    let commits = repo(base.path(), 60);
    let daemon = GitDaemon::start(base.path());
    let url = daemon.url("r.git");
    let tip = commits.last().unwrap();

    let cases = [
        (Some("main"), None, tip.as_str(), "60"),
        (None, None, tip.as_str(), "60"),
        (Some("t1"), None, commits[0].as_str(), "1"),
        (
            Some("main"),
            Some(commits[55].as_str()),
            commits[55].as_str(),
            "56",
        ),
        (
            Some("main"),
            Some(commits[0].as_str()),
            commits[0].as_str(),
            "1",
        ),
    ];
    for (r#ref, commit, want, content) in cases {
        let dest = tempfile::tempdir().unwrap();
        let info = source::clone(&request(&url, r#ref, commit, dest.path())).unwrap();
        assert_eq!(
            info.revision.commit.as_deref(),
            Some(want),
            "{ref:?} {commit:?}"
        );
        assert_eq!(
            std::fs::read_to_string(dest.path().join("f"))
                .unwrap()
                .trim(),
            content
        );
        let repo = git2::Repository::open(dest.path()).unwrap();
        let depth = {
            let mut walk = repo.revwalk().unwrap();
            walk.push_head().unwrap();
            walk.count()
        };
        if commit.is_none() {
            assert!(repo.is_shallow(), "a branch or tag is fetched at depth 1");
            assert_eq!(depth, 1);
        } else {
            assert!(
                depth < 60 || commit == Some(commits[0].as_str()),
                "deepened only as needed"
            );
        }
    }
    let dest = tempfile::tempdir().unwrap();
    let info = source::clone(&request(&url, Some("main"), None, dest.path())).unwrap();
    assert_eq!(
        info.revision.message.as_deref(),
        Some("commit 60\n\nbody 60")
    );
    assert_eq!(
        info.revision.author.and_then(|a| a.email).as_deref(),
        Some("ada@example.com")
    );
    assert!(info.date.is_some_and(|d| d.contains('T')));
}

#[test]
fn a_commit_on_another_branch_is_found_without_a_ref() {
    let base = tempfile::tempdir().unwrap();
    repo(base.path(), 2);
    let work = base.path().join("work");
    git(&work, &["checkout", "-q", "-b", "feature"]);
    std::fs::write(work.join("f"), "feature\n").unwrap();
    git(&work, &["commit", "-q", "-am", "on a feature branch"]);
    let feature = git(&work, &["rev-parse", "HEAD"]);
    git(&work, &["push", "-q", "../r.git", "feature"]);
    let daemon = GitDaemon::start(base.path());
    let dest = tempfile::tempdir().unwrap();
    let info = source::clone(&request(
        &daemon.url("r.git"),
        None,
        Some(&feature),
        dest.path(),
    ))
    .unwrap();
    assert_eq!(info.revision.commit.as_deref(), Some(feature.as_str()));
    assert_eq!(
        std::fs::read_to_string(dest.path().join("f")).unwrap(),
        "feature\n"
    );
}

#[test]
fn local_repositories_are_cloned_whole() {
    let base = tempfile::tempdir().unwrap();
    let commits = repo(base.path(), 3);
    let dest = tempfile::tempdir().unwrap();
    let url = base.path().join("r.git").display().to_string();
    let info = source::clone(&request(&url, Some("main"), Some(&commits[1]), dest.path())).unwrap();
    assert_eq!(info.revision.commit.as_deref(), Some(commits[1].as_str()));
    assert_eq!(
        std::fs::read_to_string(dest.path().join("f"))
            .unwrap()
            .trim(),
        "2"
    );
}

#[test]
fn unknown_ref_and_commit_are_reported() {
    let base = tempfile::tempdir().unwrap();
    repo(base.path(), 2);
    let daemon = GitDaemon::start(base.path());
    let url = daemon.url("r.git");
    let dest = tempfile::tempdir().unwrap();
    let err = source::clone(&request(&url, Some("nope"), None, dest.path())).unwrap_err();
    assert!(matches!(err, source::Error::UnknownRef { .. }), "{err}");
    assert!(err.to_string().contains("branches: main"), "{err}");
    let dest = tempfile::tempdir().unwrap();
    let missing = "0123456789012345678901234567890123456789";
    let err = source::clone(&request(&url, Some("main"), Some(missing), dest.path())).unwrap_err();
    assert!(matches!(err, source::Error::UnknownCommit { .. }), "{err}");
}

#[test]
fn a_fetch_past_its_byte_bound_is_stopped() {
    let base = tempfile::tempdir().unwrap();
    repo(base.path(), 3);
    let daemon = GitDaemon::start(base.path());
    let url = daemon.url("r.git");
    let dest = base.path().join("small");
    let mut req = request(&url, Some("main"), None, &dest);
    req.max_bytes = Some(64);
    let err = source::clone(&req).unwrap_err();
    assert!(
        matches!(err, source::Error::TooLarge { limit: 64, .. }),
        "{err}"
    );
    let dest = base.path().join("enough");
    let mut req = request(&url, Some("main"), None, &dest);
    req.max_bytes = Some(1 << 20);
    source::clone(&req).unwrap();
}

/// A bare repository `<name>.git` under `base` from a work tree with the files `files` and, for
/// each `(path, url, commit)`, a submodule pinned at `commit`; returns its commits (one per call
/// of `revisions`, each writing `files` with the revision number appended).
fn repo_with(
    base: &std::path::Path,
    name: &str,
    files: &[&str],
    submodules: &[(&str, &str, &str)],
    revisions: usize,
) -> Vec<String> {
    let work = base.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    support::stage_submodules(&work, submodules);
    let mut commits = Vec::new();
    for i in 1..=revisions {
        for f in files {
            std::fs::write(work.join(f), format!("{name} {i}\n")).unwrap();
            git(&work, &["add", f]);
        }
        git(&work, &["commit", "-q", "-m", &format!("{name} {i}")]);
        commits.push(git(&work, &["rev-parse", "HEAD"]));
    }
    git(
        base,
        &[
            "clone",
            "-q",
            "--bare",
            &format!("{name}-work"),
            &format!("{name}.git"),
        ],
    );
    commits
}

#[test]
fn submodules_are_cloned_recursively_at_their_recorded_commits() {
    let base = tempfile::tempdir().unwrap();
    let daemon = GitDaemon::start(base.path());
    // leaf <- middle (relative URL, pinned below its tip) <- top (absolute URL).
    let leaf = repo_with(base.path(), "leaf", &["leaf.txt"], &[], 3);
    let middle = repo_with(
        base.path(),
        "middle",
        &["middle.txt"],
        &[("deep/leaf", "../leaf.git", &leaf[1])],
        2,
    );
    let middle_url = daemon.url("middle.git");
    let top = repo_with(
        base.path(),
        "top",
        &["top.txt"],
        &[("lib", &middle_url, &middle[1])],
        1,
    );

    let dest = tempfile::tempdir().unwrap();
    let mut req = request(&daemon.url("top.git"), Some("main"), None, dest.path());
    req.submodules = true;
    let info = source::clone(&req).unwrap();
    assert_eq!(info.revision.commit.as_deref(), Some(top[0].as_str()));
    let read = |p: &str| std::fs::read_to_string(dest.path().join(p)).unwrap();
    assert_eq!(read("top.txt"), "top 1\n");
    assert_eq!(read("lib/middle.txt"), "middle 2\n");
    assert_eq!(
        read("lib/deep/leaf/leaf.txt"),
        "leaf 2\n",
        "the recorded commit, not the tip"
    );
    let leaf_repo = git2::Repository::open(dest.path().join("lib/deep/leaf")).unwrap();
    assert_eq!(
        leaf_repo.head().unwrap().target().unwrap().to_string(),
        leaf[1]
    );
    assert!(
        git2::Repository::open(dest.path().join("lib"))
            .unwrap()
            .is_shallow(),
        "a submodule pinned at its tip is fetched at depth 1"
    );

    // Without submodules the gitlink stays an empty directory.
    let dest = tempfile::tempdir().unwrap();
    source::clone(&request(
        &daemon.url("top.git"),
        Some("main"),
        None,
        dest.path(),
    ))
    .unwrap();
    assert!(!dest.path().join("lib/middle.txt").exists());
}

#[test]
fn a_submodule_url_outside_the_policy_is_refused_by_name() {
    let base = tempfile::tempdir().unwrap();
    let daemon = GitDaemon::start(base.path());
    let leaf = repo_with(base.path(), "leaf", &["leaf.txt"], &[], 1);
    let local = base.path().join("leaf.git").display().to_string();
    repo_with(
        base.path(),
        "top",
        &["top.txt"],
        &[("vendor/leaf", &local, &leaf[0])],
        1,
    );
    let dest = tempfile::tempdir().unwrap();
    let mut req = request(&daemon.url("top.git"), Some("main"), None, dest.path());
    req.submodules = true;
    let err = source::clone(&req).unwrap_err();
    assert!(matches!(err, source::Error::Submodule { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("submodule vendor/leaf") && text.contains("local repository paths"),
        "{text}"
    );
    // `kiln build` on a developer's machine may use local submodules.
    let dest = tempfile::tempdir().unwrap();
    let mut req = request(&daemon.url("top.git"), Some("main"), None, dest.path());
    req.submodules = true;
    req.allow_local_paths = true;
    source::clone(&req).unwrap();
    assert_eq!(
        std::fs::read_to_string(dest.path().join("vendor/leaf/leaf.txt")).unwrap(),
        "leaf 1\n"
    );
}

/// A plain HTTP/1.1 server on 127.0.0.1 answering every request with `answer(request head)`;
/// records each request head it read.
fn http_server(
    answer: impl Fn(&str) -> String + Send + 'static,
) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line);
            }
            log.lock().unwrap().push(head.clone());
            let _ = stream.write_all(answer(&head).as_bytes());
        }
    });
    (port, seen)
}

/// A basic-auth source secret (user `kiln`) as the build Pod mounts it.
fn secret(dir: &std::path::Path, password: &str) -> source::SourceAuth {
    let secret = dir.join("secret");
    std::fs::create_dir_all(&secret).unwrap();
    std::fs::write(secret.join("username"), "kiln").unwrap();
    std::fs::write(secret.join("password"), password).unwrap();
    source::SourceAuth::from_dir(&secret)
}

#[test]
fn a_redirect_to_another_host_is_refused() {
    // The repository's server sends every request to a server on another host name.
    let (elsewhere, reached) = http_server(|_| {
        "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
    });
    let (port, _) = http_server(move |head| {
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        format!(
            "HTTP/1.1 302 Found\r\nLocation: http://localhost:{elsewhere}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
    });
    let dest = tempfile::tempdir().unwrap();
    let mut req = request(
        &format!("http://127.0.0.1:{port}/r.git"),
        None,
        None,
        &dest.path().join("c"),
    );
    req.auth = secret(dest.path(), "s3cr3t");
    let err = source::clone(&req).unwrap_err().to_string();
    assert!(err.contains("cannot redirect"), "{err}");
    assert!(
        reached.lock().unwrap().is_empty(),
        "nothing reached the other host: {:?}",
        reached.lock().unwrap()
    );
}

#[test]
fn credentials_go_only_to_the_repositorys_own_host() {
    let unauthorized = |head: &str| {
        if head.to_ascii_lowercase().contains("authorization: basic") {
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        } else {
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"git\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into()
        }
    };
    for (credentials_host, sent) in [(None, true), (Some("git.example"), false)] {
        let (port, seen) = http_server(unauthorized);
        let dest = tempfile::tempdir().unwrap();
        let mut req = request(
            &format!("http://127.0.0.1:{port}/r.git"),
            None,
            None,
            &dest.path().join("c"),
        );
        req.auth = secret(dest.path(), "s3cr3t");
        // A submodule's request keeps its superproject's host: here, another one.
        req.credentials_host = credentials_host.map(String::from);
        let err = source::clone(&req).unwrap_err().to_string();
        let authorized = seen
            .lock()
            .unwrap()
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("authorization: basic"));
        assert_eq!(authorized, sent, "{credentials_host:?}: {err}");
        if !sent {
            assert!(
                err.contains("127.0.0.1 asks for credentials; the source secret's are sent only to git.example"),
                "{err}"
            );
        }
        assert!(!err.contains("s3cr3t"), "{err}");
    }
}

/// A server on 127.0.0.1 that accepts connections and, past the first `answered` requests
/// (answered with `answer`), never says anything; the connections stay open.
fn silent_server(answered: usize, answer: String) -> u16 {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut open = Vec::new();
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            if n < answered {
                let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    line.clear();
                }
                let _ = stream.write_all(answer.as_bytes());
            }
            open.push(stream);
        }
    });
    port
}

fn pkt(line: &str) -> String {
    format!("{:04x}{line}", line.len() + 4)
}

#[test]
fn a_server_that_stops_answering_ends_the_clone() {
    // Connects, then nothing: the connect limit passes.
    let port = silent_server(0, String::new());
    let dest = tempfile::tempdir().unwrap();
    let mut req = request(
        &format!("http://127.0.0.1:{port}/r.git"),
        None,
        None,
        &dest.path().join("connect"),
    );
    req.connect_timeout = Some(std::time::Duration::from_secs(1));
    let err = source::clone(&req).unwrap_err();
    assert!(
        matches!(err, source::Error::Stalled { .. }),
        "{err}: want a stall"
    );
    assert!(
        err.to_string()
            .ends_with("was given up: no answer from the server within 1s"),
        "{err}"
    );

    // Lists its refs, then sends no objects: the idle limit passes.
    let oid = "1111111111111111111111111111111111111111";
    let body = format!(
        "{}0000{}{}0000",
        pkt("# service=git-upload-pack\n"),
        pkt(&format!(
            "{oid} HEAD\0multi_ack_detailed side-band-64k shallow symref=HEAD:refs/heads/main\n"
        )),
        pkt(&format!("{oid} refs/heads/main\n")),
    );
    let advertisement = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/x-git-upload-pack-advertisement\r\nCache-Control: no-cache\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let port = silent_server(1, advertisement);
    let mut req = request(
        &format!("http://127.0.0.1:{port}/r.git"),
        None,
        None,
        &dest.path().join("idle"),
    );
    req.idle_timeout = Some(std::time::Duration::from_secs(1));
    let err = source::clone(&req).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("was given up: no data from the server for 1s"),
        "{err}"
    );
}
