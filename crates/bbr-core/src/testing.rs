//! In-memory doubles of a deployment for fast workflow tests (the `testing` feature): a
//! [`ScriptedRemote`] that answers the core's command vocabulary from a small simulated VM
//! (scripts, files under the artifact directory) and from a table of matchers, and records
//! every command in one [`Journal`] shared by all VMs; and a [`FakeSource`] with instances
//! and a log of what it released. No root, sshd or network is involved.
//!
//! Unmatched commands get the answers a healthy VM gives: `find` lists the scripts added
//! with [`ScriptedRemote::script`], `stat` of the artifact directory fails unless
//! [`ScriptedRemote::with_artifact_directory`] was called, a `backup` script "writes" the
//! files given with [`ScriptedRemote::backup_files`] into its `BBR_ARTIFACT_DIRECTORY`,
//! `mkdir`, `du`, `find -printf`, `tar -c`, `tar -x` and `rm -rf` act on the simulated
//! files, every other script exits 0 (a `metadata` script prints what it was given).
//! What `tar -x` was sent is kept byte for byte ([`ScriptedRemote::received_entries`]).
//!
//! [`MemoryPrefix`] is an object-store prefix in memory (the [`StoredArtifacts`] an
//! `s3://` path gives the workflows), with a [`StoreOp`] journal and knobs to make the
//! store fail; [`tar_with`] makes tars no well-behaved `tar -c` writes.

use crate::ARTIFACT_DIRECTORY;
use crate::artifact_location::{StoredArtifacts, TarSink};
use crate::commands::{self, RootCommand};
use crate::discovery::{self, FoundScripts};
use crate::error::BbrError;
use crate::model::{Instance, ScriptKind};
use crate::remote::{Output, Remote, RemoteError, StdoutSink};
use crate::report::Reporter;
use crate::source::{DeploymentSource, FoundDeployment, FoundInstance, SourceError};
use crate::stop::StopSignal;
use async_trait::async_trait;
use bbr_artifact::{ArtifactFiles, FileEntry};
use futures::channel::oneshot;
use futures::future::BoxFuture;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::{Arc, Mutex};

/// One command a [`ScriptedRemote`] received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A release-author script launched through [`commands::run_script`].
    Script {
        /// The VM's address.
        host: String,
        /// The script's path.
        path: String,
        /// The variables it was given.
        env: Vec<(String, String)>,
    },
    /// Any other root command (its shell text).
    Root {
        /// The VM's address.
        host: String,
        /// The shell text.
        shell: String,
    },
    /// A command run through [`Remote::run`], [`Remote::run_streaming_stdout`] or
    /// [`Remote::run_with_stdin`] (with `sudo -n`).
    Plain {
        /// The VM's address.
        host: String,
        /// The command line.
        command: String,
    },
}

/// Every command sent to any VM of a test, in the order they arrived.
#[derive(Default, Clone)]
pub struct Journal {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Journal {
    fn push(&self, call: Call) {
        self.calls.lock().expect("journal lock").push(call);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("journal lock").clone()
    }

    /// The lifecycle scripts run so far (metadata scripts left out), each as
    /// `<host> <job> <script>`, with `true`/`false` appended for `post-backup-unlock`
    /// (its `BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL`), like the VM tests' event logs.
    pub fn events(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Script { host, path, env } => {
                    let (job, kind) = discovery::classify_script_path(&path)?;
                    if kind == ScriptKind::Metadata {
                        return None;
                    }
                    let mut line = format!("{host} {job} {}", kind.file_name());
                    if let Some((_, v)) = env
                        .iter()
                        .find(|(k, _)| k == "BBR_AFTER_BACKUP_SCRIPTS_SUCCESSFUL")
                    {
                        line.push(' ');
                        line.push_str(v);
                    }
                    Some(line)
                }
                _ => None,
            })
            .collect()
    }

    /// The shell text of the root commands (not scripts) run on `host` so far.
    pub fn root_commands(&self, host: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Root { host: h, shell } if h == host => Some(shell),
                _ => None,
            })
            .collect()
    }
}

/// Which commands a rule applies to.
#[derive(Debug, Clone)]
pub enum Matcher {
    /// The script at this path.
    Script(String),
    /// A root command whose shell text is exactly this (scripts excluded).
    Shell(String),
    /// A root command whose shell text starts with this (scripts excluded).
    ShellPrefix(String),
    /// A plain command line containing this.
    PlainContains(String),
}

impl Matcher {
    /// The script of `job` of this kind: `/var/vcap/jobs/<job>/bin/bbr/<kind>`.
    pub fn script(job: &str, kind: ScriptKind) -> Self {
        Matcher::Script(script_path(job, kind))
    }
}

/// The path of a job's script on a VM.
pub fn script_path(job: &str, kind: ScriptKind) -> String {
    format!("/var/vcap/jobs/{job}/bin/bbr/{}", kind.file_name())
}

/// How a matched command answers.
#[derive(Clone, Default)]
pub struct Reply {
    exit_code: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    connection_error: Option<String>,
    raise: Option<StopSignal>,
    hang: bool,
}

impl Reply {
    /// Exit 0 with no output.
    pub fn ok() -> Self {
        Self::default()
    }

    /// Exit with `code`.
    pub fn exit(code: u32) -> Self {
        Self {
            exit_code: code,
            ..Self::default()
        }
    }

    /// The command could not be run at all (a dropped connection).
    pub fn connection_error(reason: &str) -> Self {
        Self {
            connection_error: Some(reason.to_string()),
            ..Self::default()
        }
    }

    /// Prints `data` on stdout.
    pub fn stdout(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stdout = data.into();
        self
    }

    /// Prints `data` on stderr.
    pub fn stderr(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.stderr = data.into();
        self
    }

    /// Raises `stop` as the command starts (a SIGTERM arriving during this step).
    pub fn raising(mut self, stop: &StopSignal) -> Self {
        self.raise = Some(stop.clone());
        self
    }

    /// Never ends on its own: a script ends (status 143) once [`commands::kill_script`]
    /// for its pid file arrives; any other command only when the core drops it.
    pub fn hanging(mut self) -> Self {
        self.hang = true;
        self
    }
}

/// The simulated state of one VM.
#[derive(Default)]
struct Vm {
    rules: Vec<(Matcher, Reply)>,
    scripts: Vec<String>,
    metadata: BTreeMap<String, String>,
    backup_files: BTreeMap<String, Vec<(String, Vec<u8>)>>,
    /// Files under the artifact directory, by directory (`<ARTIFACT_DIRECTORY>/<artifact>`).
    dirs: BTreeMap<String, BTreeMap<String, Vec<u8>>>,
    artifact_directory: bool,
    /// Running hanging scripts, by pid file.
    hanging: BTreeMap<String, oneshot::Sender<()>>,
    /// Every byte `tar -x` read from its stdin, by extraction directory.
    received: BTreeMap<String, Vec<u8>>,
}

/// A VM answering from a table of rules and a simulated file tree; see the module docs.
pub struct ScriptedRemote {
    address: String,
    journal: Journal,
    vm: Mutex<Vm>,
}

impl ScriptedRemote {
    /// A healthy VM at `address` recording into `journal`.
    pub fn new(address: &str, journal: &Journal) -> Arc<Self> {
        Arc::new(Self {
            address: address.to_string(),
            journal: journal.clone(),
            vm: Mutex::new(Vm::default()),
        })
    }

    fn vm(&self) -> std::sync::MutexGuard<'_, Vm> {
        self.vm.lock().expect("vm lock")
    }

    /// Installs the script `kind` of `job` (listed by `find`, exits 0 unless a rule says
    /// otherwise).
    pub fn script(&self, job: &str, kind: ScriptKind) -> &Self {
        self.vm().scripts.push(script_path(job, kind));
        self
    }

    /// Installs `job`'s `metadata` script, printing `yaml`.
    pub fn metadata(&self, job: &str, yaml: &str) -> &Self {
        self.script(job, ScriptKind::Metadata);
        self.vm().metadata.insert(job.to_string(), yaml.to_string());
        self
    }

    /// What `job`'s `backup` script writes into its artifact directory.
    pub fn backup_files(&self, job: &str, files: &[(&str, &[u8])]) -> &Self {
        self.vm().backup_files.insert(
            job.to_string(),
            files
                .iter()
                .map(|(n, d)| (n.to_string(), d.to_vec()))
                .collect(),
        );
        self
    }

    /// Makes `/var/vcap/store/bbr-backup` exist before the run.
    pub fn with_artifact_directory(&self) -> &Self {
        self.vm().artifact_directory = true;
        self
    }

    /// Adds a rule; the first rule added that matches a command answers it.
    pub fn on(&self, matcher: Matcher, reply: Reply) -> &Self {
        self.vm().rules.push((matcher, reply));
        self
    }

    /// The files under `dir` (relative names), as the simulated VM holds them now.
    pub fn files(&self, dir: &str) -> BTreeMap<String, Vec<u8>> {
        self.vm().dirs.get(dir).cloned().unwrap_or_default()
    }

    /// The names (as stored, `./` kept) of every tar entry whose header reached `tar -x`
    /// into `dir`, in stream order; a stream cut short (a refused entry) counts up to
    /// the last whole header it delivered, as a real `tar -x` would have extracted.
    pub fn received_entries(&self, dir: &str) -> Vec<String> {
        let bytes = self.vm().received.get(dir).cloned().unwrap_or_default();
        let mut names = Vec::new();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let Ok(entries) = archive.entries() else {
            return names;
        };
        for entry in entries {
            let Ok(entry) = entry else { break };
            names.push(String::from_utf8_lossy(&entry.path_bytes()).into_owned());
        }
        names
    }

    /// True while `/var/vcap/store/bbr-backup` exists on the simulated VM.
    pub fn has_artifact_directory(&self) -> bool {
        self.vm().artifact_directory
    }

    fn rule(
        &self,
        launch: Option<&commands::ScriptLaunch>,
        text: &str,
        plain: bool,
    ) -> Option<Reply> {
        self.vm()
            .rules
            .iter()
            .find(|(m, _)| match (m, launch) {
                (Matcher::Script(p), Some(l)) => *p == l.path,
                (Matcher::Shell(p), None) => !plain && text == p.as_str(),
                (Matcher::ShellPrefix(p), None) => !plain && text.starts_with(p.as_str()),
                (Matcher::PlainContains(p), None) => plain && text.contains(p.as_str()),
                _ => false,
            })
            .map(|(_, r)| r.clone())
    }

    fn error(&self, reason: &str) -> RemoteError {
        RemoteError::Connection {
            host: self.address.clone(),
            reason: reason.to_string(),
        }
    }

    /// Answers a rule: raises, hangs, fails or returns its output.
    async fn answer(&self, reply: Reply, pid_file: Option<&str>) -> Result<Output, RemoteError> {
        if let Some(stop) = &reply.raise {
            stop.raise();
        }
        if let Some(reason) = &reply.connection_error {
            return Err(self.error(reason));
        }
        if reply.hang {
            match pid_file {
                Some(pid) => {
                    let (tx, rx) = oneshot::channel();
                    self.vm().hanging.insert(pid.to_string(), tx);
                    let _ = rx.await;
                    return Ok(Output {
                        exit_code: 143,
                        stdout: reply.stdout,
                        stderr: reply.stderr,
                    });
                }
                None => futures::future::pending::<()>().await,
            }
        }
        Ok(Output {
            exit_code: reply.exit_code,
            stdout: reply.stdout,
            stderr: reply.stderr,
        })
    }

    /// What a healthy VM does with a script.
    fn default_script(&self, launch: &commands::ScriptLaunch) -> Output {
        let mut vm = self.vm();
        let Some((job, kind)) = discovery::classify_script_path(&launch.path) else {
            return Output::default();
        };
        match kind {
            ScriptKind::Metadata => Output {
                stdout: vm
                    .metadata
                    .get(&job)
                    .cloned()
                    .unwrap_or_default()
                    .into_bytes(),
                ..Output::default()
            },
            ScriptKind::Backup => {
                let dir = launch
                    .env
                    .iter()
                    .find(|(k, _)| k == "BBR_ARTIFACT_DIRECTORY")
                    .map(|(_, v)| v.trim_end_matches('/').to_string())
                    .unwrap_or_default();
                let files = vm.backup_files.get(&job).cloned().unwrap_or_default();
                let d = vm.dirs.entry(dir).or_default();
                d.extend(files);
                Output::default()
            }
            _ => Output::default(),
        }
    }

    /// What a healthy VM does with a root command of the vocabulary.
    fn default_root(&self, shell: &str) -> Output {
        let mut vm = self.vm();
        let ok = |stdout: Vec<u8>| Output {
            stdout,
            ..Output::default()
        };
        let dir_of = |prefix: &str| -> Option<String> {
            let rest = shell.strip_prefix(prefix)?;
            Some(unquote(rest.split(' ').next().unwrap_or_default()))
        };
        if shell == commands::find_scripts().shell() {
            if vm.scripts.is_empty() {
                return Output {
                    exit_code: 1,
                    stderr: b"find: '/var/vcap/jobs/*/bin/bbr/*': No such file or directory"
                        .to_vec(),
                    ..Output::default()
                };
            }
            return ok(vm.scripts.join("\n").into_bytes());
        }
        if shell == commands::stat_artifact_directory().shell() {
            if vm.artifact_directory {
                return ok(Vec::new());
            }
            return Output {
                exit_code: 1,
                stderr: format!(
                    "stat: cannot stat '{ARTIFACT_DIRECTORY}': No such file or directory"
                )
                .into_bytes(),
                ..Output::default()
            };
        }
        if shell.starts_with("p=$(cat ") {
            let killed: Vec<String> = vm
                .hanging
                .keys()
                .filter(|pid| commands::kill_script(pid).shell() == shell)
                .cloned()
                .collect();
            for pid in killed {
                if let Some(tx) = vm.hanging.remove(&pid) {
                    let _ = tx.send(());
                }
            }
            return ok(Vec::new());
        }
        if let Some(dir) = dir_of("mkdir -p ") {
            vm.artifact_directory |= dir.starts_with(ARTIFACT_DIRECTORY);
            vm.dirs.entry(dir).or_default();
            return ok(Vec::new());
        }
        if let Some(dir) = dir_of("du -sh ") {
            return ok(format!("4.0K\t{dir}\n").into_bytes());
        }
        if let Some(dir) = dir_of("find ") {
            let mut out = Vec::new();
            for (name, data) in vm.dirs.get(&dir).into_iter().flatten() {
                out.extend_from_slice(format!("{} {name}\0", data.len()).as_bytes());
            }
            return ok(out);
        }
        if let Some(dir) = dir_of("tar -C ") {
            return ok(tar_of(vm.dirs.get(&dir).cloned().unwrap_or_default()));
        }
        if let Some(dir) = dir_of("rm -rf ") {
            if dir == ARTIFACT_DIRECTORY {
                vm.dirs.clear();
                vm.artifact_directory = false;
            } else {
                vm.dirs.remove(&dir);
            }
            return ok(Vec::new());
        }
        ok(Vec::new())
    }
}

/// Undoes [`commands::shell_quote`] for the simple quoting the vocabulary uses.
fn unquote(s: &str) -> String {
    match s.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Some(inner) => inner.replace(r"'\''", "'"),
        None => s.to_string(),
    }
}

/// An uncompressed tar of `files` with the entries `tar -C <dir> -c .` writes (`./`,
/// `./<name>`).
pub fn tar_of(files: BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let names: Vec<String> = files.keys().map(|n| format!("./{n}")).collect();
    let mut items = vec![TarItem::Dir("./")];
    items.extend(
        names
            .iter()
            .zip(files.values())
            .map(|(n, d)| TarItem::File(n, d)),
    );
    tar_with(&items)
}

/// One entry of a tar made by [`tar_with`]; names and link targets are written as given.
#[derive(Debug, Clone, Copy)]
pub enum TarItem<'a> {
    /// A directory.
    Dir(&'a str),
    /// A regular file and its content.
    File(&'a str, &'a [u8]),
    /// A symbolic link and its target.
    Symlink(&'a str, &'a str),
    /// A character device node (1, 3: `/dev/null`'s numbers).
    CharDevice(&'a str),
}

/// An uncompressed tar of `items`, in order, with its end-of-archive blocks: for tars a
/// well-behaved `tar -c` never writes (a device node, an entry through a symlink).
pub fn tar_with(items: &[TarItem<'_>]) -> Vec<u8> {
    // Names are written raw: the `tar` crate's path setters drop the leading `./`.
    fn raw(field: &mut [u8], text: &str) {
        assert!(text.len() < field.len(), "test name too long: {text}");
        field[..text.len()].copy_from_slice(text.as_bytes());
    }
    let mut builder = tar::Builder::new(Vec::new());
    for item in items {
        let mut header = tar::Header::new_ustar();
        let (name, kind, mode, data): (&str, _, _, &[u8]) = match *item {
            TarItem::Dir(name) => (name, tar::EntryType::Directory, 0o755, &[]),
            TarItem::File(name, data) => (name, tar::EntryType::Regular, 0o644, data),
            TarItem::Symlink(name, target) => {
                raw(&mut header.as_old_mut().linkname, target);
                (name, tar::EntryType::Symlink, 0o777, &[])
            }
            TarItem::CharDevice(name) => {
                header.set_device_major(1).expect("ustar device numbers");
                header.set_device_minor(3).expect("ustar device numbers");
                (name, tar::EntryType::Char, 0o666, &[])
            }
        };
        raw(&mut header.as_old_mut().name, name);
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(data.len() as u64);
        header.set_mtime(0);
        header.set_cksum();
        builder.append(&header, data).expect("tar in memory");
    }
    builder.into_inner().expect("tar in memory")
}

/// The regular files of a tar, by relative name (`./` stripped).
fn untar(bytes: &[u8]) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let mut archive = tar::Archive::new(bytes);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry
            .path()?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data)?;
        files.insert(name, data);
    }
    Ok(files)
}

#[async_trait]
impl Remote for ScriptedRemote {
    fn address(&self) -> &str {
        &self.address
    }

    async fn run(&self, command: &str) -> Result<Output, RemoteError> {
        self.journal.push(Call::Plain {
            host: self.address.clone(),
            command: command.to_string(),
        });
        match self.rule(None, command, true) {
            Some(reply) => self.answer(reply, None).await,
            None => Ok(Output::default()),
        }
    }

    async fn run_as_root(&self, command: &RootCommand) -> Result<Output, RemoteError> {
        let launch = command.launch();
        self.journal.push(match launch {
            Some(l) => Call::Script {
                host: self.address.clone(),
                path: l.path.clone(),
                env: l.env.clone(),
            },
            None => Call::Root {
                host: self.address.clone(),
                shell: command.shell().to_string(),
            },
        });
        if let Some(reply) = self.rule(launch, command.shell(), false) {
            return self
                .answer(reply, launch.map(|l| l.pid_file.as_str()))
                .await;
        }
        Ok(match launch {
            Some(l) => self.default_script(l),
            None => self.default_root(command.shell()),
        })
    }

    async fn run_streaming_stdout(
        &self,
        command: &str,
        sink: &mut StdoutSink<'_>,
    ) -> Result<Output, RemoteError> {
        self.journal.push(Call::Plain {
            host: self.address.clone(),
            command: command.to_string(),
        });
        let mut output = match self.rule(None, command, true) {
            Some(reply) => self.answer(reply, None).await?,
            None => {
                let shell = command
                    .strip_prefix("sudo -n ")
                    .unwrap_or(command)
                    .to_string();
                self.default_root(&shell)
            }
        };
        let stdout = std::mem::take(&mut output.stdout);
        sink(&stdout).map_err(|source| RemoteError::Sink {
            host: self.address.clone(),
            source,
        })?;
        Ok(output)
    }

    async fn run_with_stdin(
        &self,
        command: &str,
        mut source: Box<dyn std::io::Read + Send>,
    ) -> Result<Output, RemoteError> {
        self.journal.push(Call::Plain {
            host: self.address.clone(),
            command: command.to_string(),
        });
        // `sudo -n sh -c 'tar -C <dir> -x'`
        let dir = command
            .split("tar -C ")
            .nth(1)
            .map(|rest| rest.trim_end_matches(" -x'").replace(r"'\''", "'"))
            .map(|d| d.trim_matches('\'').to_string())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        // `read_to_end` keeps what it read before an error: that much reached `tar -x`.
        let read = source.read_to_end(&mut bytes);
        self.vm()
            .received
            .entry(dir.clone())
            .or_default()
            .extend_from_slice(&bytes);
        read.map_err(|source| RemoteError::Source {
            host: self.address.clone(),
            source,
        })?;
        if let Some(reply) = self.rule(None, command, true) {
            return self.answer(reply, None).await;
        }
        match untar(&bytes) {
            Ok(files) => {
                self.vm().dirs.entry(dir).or_default().extend(files);
                Ok(Output::default())
            }
            Err(e) => Ok(Output {
                exit_code: 2,
                stderr: format!("tar: {e}").into_bytes(),
                ..Output::default()
            }),
        }
    }
}

/// One instance of a [`FakeSource`].
pub struct FakeInstance {
    /// Instance group.
    pub group: String,
    /// BOSH index.
    pub index: String,
    /// Instance id.
    pub id: String,
    /// Its VM.
    pub remote: Arc<ScriptedRemote>,
    /// Release per job name.
    pub releases: BTreeMap<String, String>,
    /// Jobs with `bbr.backup_one_restore_all`.
    pub backup_one_restore_all: BTreeSet<String>,
    /// The group's bootstrap instance.
    pub bootstrap: bool,
}

/// A deployment of [`ScriptedRemote`]s: finds scripts with the core's own `find`, and logs
/// every instance it releases.
pub struct FakeSource {
    name: String,
    omit_releases: bool,
    journal: Journal,
    instances: Vec<FakeInstance>,
    manifest: Option<String>,
    released: Mutex<Vec<String>>,
    release_failures: BTreeMap<String, String>,
}

impl FakeSource {
    /// A deployment called `name` with no instances; director-mode ordering when
    /// `omit_releases`.
    pub fn new(name: &str, omit_releases: bool) -> Self {
        Self {
            name: name.to_string(),
            omit_releases,
            journal: Journal::default(),
            instances: Vec::new(),
            manifest: None,
            released: Mutex::new(Vec::new()),
            release_failures: BTreeMap::new(),
        }
    }

    /// The journal every VM of this source records into.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Adds the instance `<group>/<index>` (id `<group>-<index>-id`, address
    /// `<group>/<index>`) and returns its VM.
    pub fn instance(&mut self, group: &str, index: usize) -> Arc<ScriptedRemote> {
        let remote = ScriptedRemote::new(&format!("{group}/{index}"), &self.journal);
        self.instances.push(FakeInstance {
            group: group.to_string(),
            index: index.to_string(),
            id: format!("{group}-{index}-id"),
            remote: remote.clone(),
            releases: BTreeMap::new(),
            backup_one_restore_all: BTreeSet::new(),
            bootstrap: index == 0,
        });
        remote
    }

    /// The instances added so far (to set releases or flags).
    pub fn instances_mut(&mut self) -> &mut [FakeInstance] {
        &mut self.instances
    }

    /// Sets the manifest returned for `--with-manifest`.
    pub fn set_manifest(&mut self, manifest: &str) {
        self.manifest = Some(manifest.to_string());
    }

    /// Makes releasing the instance `<group>/<id>` fail with `reason`.
    pub fn fail_release(&mut self, identifier: &str, reason: &str) {
        self.release_failures
            .insert(identifier.to_string(), reason.to_string());
    }

    /// The identifiers (`<group>/<id>`) of the instances released so far, in order.
    pub fn released(&self) -> Vec<String> {
        self.released.lock().expect("released lock").clone()
    }
}

#[async_trait]
impl DeploymentSource for FakeSource {
    fn deployment_name(&self) -> &str {
        &self.name
    }

    fn omits_releases(&self) -> bool {
        self.omit_releases
    }

    async fn find(&self, reporter: &dyn Reporter) -> Result<FoundDeployment, BbrError> {
        let mut instances = Vec::new();
        for i in &self.instances {
            let identifier = format!("{}/{}", i.group, i.id);
            let scripts: FoundScripts =
                discovery::find_scripts(i.remote.as_ref(), &identifier, reporter).await?;
            instances.push(FoundInstance {
                group: i.group.clone(),
                index: i.index.clone(),
                id: i.id.clone(),
                remote: i.remote.clone(),
                scripts,
                releases: i.releases.clone(),
                backup_one_restore_all: i.backup_one_restore_all.clone(),
                bootstrap: i.bootstrap,
            });
        }
        Ok(FoundDeployment {
            name: self.name.clone(),
            instances,
        })
    }

    async fn manifest(&self) -> Result<Option<String>, SourceError> {
        Ok(self.manifest.clone())
    }

    async fn release_instance(&self, instance: &Instance) -> Result<(), SourceError> {
        let id = instance.identifier();
        self.released
            .lock()
            .expect("released lock")
            .push(id.clone());
        match self.release_failures.get(&id) {
            Some(reason) => Err(SourceError::Backend(reason.clone().into())),
            None => Ok(()),
        }
    }
}

/// One call a [`MemoryPrefix`] received. Keys are relative to the top prefix (the one
/// made by [`MemoryPrefix::new`]), `<dir>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    /// [`StoredArtifacts::check`].
    Check,
    /// [`StoredArtifacts::list`] of this directory.
    List(String),
    /// An upload started ([`StoredArtifacts::create`]).
    Create(String),
    /// Bytes an upload accepted in one write.
    Write(String, usize),
    /// An upload completed: the object became visible.
    Finish(String),
    /// An upload aborted ([`TarSink::abort`]).
    Abort(String),
    /// An upload dropped unfinished and unaborted (aborted by the store, as the real
    /// sink's `Drop` does).
    Abandon(String),
    /// A small object written in one request ([`StoredArtifacts::put`]).
    Put(String),
    /// An object opened for reading.
    Open(String),
}

impl StoreOp {
    /// The key (or directory) the operation is about; `None` for [`StoreOp::Check`].
    pub fn key(&self) -> Option<&str> {
        match self {
            StoreOp::Check => None,
            StoreOp::List(k)
            | StoreOp::Create(k)
            | StoreOp::Write(k, _)
            | StoreOp::Finish(k)
            | StoreOp::Abort(k)
            | StoreOp::Abandon(k)
            | StoreOp::Put(k)
            | StoreOp::Open(k) => Some(k),
        }
    }
}

/// The objects, journal and knobs shared by a [`MemoryPrefix`] and its sub-prefixes.
#[derive(Default)]
struct Bucket {
    objects: BTreeMap<String, Vec<u8>>,
    journal: Vec<StoreOp>,
    check_failure: Option<String>,
    /// Uploads of objects with this name fail once this many bytes were accepted.
    write_failures: BTreeMap<String, usize>,
}

/// An object-store prefix in memory: the [`StoredArtifacts`] of a test (see the module
/// docs). Semantics are those of the command line's store-backed prefix: a tar written
/// through [`StoredArtifacts::create`] becomes an object only on [`TarSink::finish`],
/// never on abort or drop; `put` writes at once; a listing gives names relative to the
/// directory listed. Every call is journaled ([`MemoryPrefix::journal`]).
#[derive(Clone)]
pub struct MemoryPrefix {
    url: String,
    /// This prefix's key below the top prefix (`""` at the top).
    root: String,
    bucket: Arc<Mutex<Bucket>>,
}

/// `a/b` from `a` and `b`, either side possibly empty.
fn join_key(dir: &str, name: &str) -> String {
    let (dir, name) = (dir.trim_matches('/'), name.trim_matches('/'));
    match (dir.is_empty(), name.is_empty()) {
        (true, _) => name.to_string(),
        (false, true) => dir.to_string(),
        (false, false) => format!("{dir}/{name}"),
    }
}

/// The objects below the directory `dir` (every key when `dir` is empty), names relative
/// to it.
fn below(objects: &BTreeMap<String, Vec<u8>>, dir: &str) -> Vec<(String, u64)> {
    let strip = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    objects
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix(&strip)?.to_string(), v.len() as u64)))
        .collect()
}

impl MemoryPrefix {
    /// An empty prefix shown as `url` (say `s3://bucket/backups`).
    pub fn new(url: &str) -> MemoryPrefix {
        MemoryPrefix {
            url: url.trim_end_matches('/').to_string(),
            root: String::new(),
            bucket: Arc::default(),
        }
    }

    /// The prefix `<this>/<dir>`, sharing objects, journal and knobs (an artifact's own
    /// URL, as given to `bbr restore`).
    pub fn at(&self, dir: &str) -> MemoryPrefix {
        MemoryPrefix {
            url: join_key(&self.url, dir),
            root: join_key(&self.root, dir),
            bucket: self.bucket.clone(),
        }
    }

    fn bucket(&self) -> std::sync::MutexGuard<'_, Bucket> {
        self.bucket.lock().expect("bucket lock")
    }

    /// `key` (relative to this prefix) relative to the top prefix.
    fn full(&self, key: &str) -> String {
        join_key(&self.root, key)
    }

    /// Makes [`StoredArtifacts::check`] fail with `reason` (a missing bucket, refused
    /// credentials).
    pub fn fail_check(&self, reason: &str) -> &Self {
        self.bucket().check_failure = Some(reason.to_string());
        self
    }

    /// Makes the upload of every object called `name` (the last part of its key) fail
    /// once it accepted `after` bytes, as an upload task failing mid-stream does.
    pub fn fail_writes_after(&self, name: &str, after: usize) -> &Self {
        self.bucket().write_failures.insert(name.to_string(), after);
        self
    }

    /// Stores `data` as `key` (relative to this prefix), as if written earlier.
    pub fn insert(&self, key: &str, data: impl Into<Vec<u8>>) -> &Self {
        let key = self.full(key);
        self.bucket().objects.insert(key, data.into());
        self
    }

    /// Removes `key`, returning its content.
    pub fn remove(&self, key: &str) -> Option<Vec<u8>> {
        let key = self.full(key);
        self.bucket().objects.remove(&key)
    }

    /// Changes the content of `key` in place (panics when it does not exist).
    pub fn update(&self, key: &str, change: impl FnOnce(&mut Vec<u8>)) {
        let key = self.full(key);
        let mut bucket = self.bucket();
        change(bucket.objects.get_mut(&key).expect("object to change"));
    }

    /// The content of `key`, if it exists.
    pub fn object(&self, key: &str) -> Option<Vec<u8>> {
        self.bucket().objects.get(&self.full(key)).cloned()
    }

    /// Every key below this prefix (relative to it), sorted.
    pub fn keys(&self) -> Vec<String> {
        below(&self.bucket().objects, &self.root)
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// Every call received so far, by this prefix or any sharing its objects, in order.
    pub fn journal(&self) -> Vec<StoreOp> {
        self.bucket().journal.clone()
    }

    fn record(&self, op: StoreOp) {
        self.bucket().journal.push(op);
    }
}

impl StoredArtifacts for MemoryPrefix {
    fn location(&self) -> String {
        self.url.clone()
    }

    fn check(&self) -> BoxFuture<'_, std::io::Result<()>> {
        Box::pin(async move {
            let mut bucket = self.bucket();
            bucket.journal.push(StoreOp::Check);
            match &bucket.check_failure {
                Some(reason) => Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("{}: {reason}", self.url),
                )),
                None => Ok(()),
            }
        })
    }

    fn list<'a>(&'a self, dir: &'a str) -> BoxFuture<'a, std::io::Result<Vec<(String, u64)>>> {
        Box::pin(async move {
            let dir = self.full(dir);
            let mut bucket = self.bucket();
            bucket.journal.push(StoreOp::List(dir.clone()));
            Ok(below(&bucket.objects, &dir))
        })
    }

    fn create(&self, dir: &str, name: &str) -> std::io::Result<Box<dyn TarSink>> {
        let key = self.full(&join_key(dir, name));
        let fail_after = {
            let mut bucket = self.bucket();
            bucket.journal.push(StoreOp::Create(key.clone()));
            bucket.write_failures.get(name).copied()
        };
        Ok(Box::new(MemoryUpload {
            prefix: self.clone(),
            key,
            data: Vec::new(),
            fail_after,
            failed: false,
            ended: false,
        }))
    }

    fn put<'a>(
        &'a self,
        dir: &'a str,
        name: &'a str,
        data: Vec<u8>,
    ) -> BoxFuture<'a, std::io::Result<()>> {
        Box::pin(async move {
            let key = self.full(&join_key(dir, name));
            let mut bucket = self.bucket();
            bucket.journal.push(StoreOp::Put(key.clone()));
            bucket.objects.insert(key, data);
            Ok(())
        })
    }

    fn artifact(&self, dir: &str) -> Arc<dyn ArtifactFiles + Send + Sync> {
        Arc::new(MemoryArtifact(self.at(dir)))
    }
}

/// A multipart upload to a [`MemoryPrefix`]: the bytes stay here until
/// [`TarSink::finish`].
struct MemoryUpload {
    prefix: MemoryPrefix,
    key: String,
    data: Vec<u8>,
    fail_after: Option<usize>,
    /// The injected failure happened: the upload is dead.
    failed: bool,
    /// Finished or aborted.
    ended: bool,
}

impl std::io::Write for MemoryUpload {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.failed {
            return Err(std::io::Error::other("the upload already failed"));
        }
        let room = self
            .fail_after
            .map_or(buf.len(), |limit| limit.saturating_sub(self.data.len()));
        if room == 0 && !buf.is_empty() {
            self.failed = true;
            // The store client's words, without the object's name: naming it is the
            // drain's job.
            return Err(std::io::Error::other(format!(
                "the store failed the upload after {} bytes: connection reset by peer",
                self.data.len()
            )));
        }
        let n = room.min(buf.len());
        self.data.extend_from_slice(&buf[..n]);
        self.prefix.record(StoreOp::Write(self.key.clone(), n));
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl TarSink for MemoryUpload {
    fn finish(mut self: Box<Self>) -> std::io::Result<u64> {
        self.ended = true;
        if self.failed {
            return Err(std::io::Error::other("the upload already failed"));
        }
        let data = std::mem::take(&mut self.data);
        let len = data.len() as u64;
        let mut bucket = self.prefix.bucket();
        bucket.journal.push(StoreOp::Finish(self.key.clone()));
        bucket.objects.insert(self.key.clone(), data);
        Ok(len)
    }

    fn abort(mut self: Box<Self>) -> std::io::Result<()> {
        self.ended = true;
        self.prefix.record(StoreOp::Abort(self.key.clone()));
        Ok(())
    }
}

impl Drop for MemoryUpload {
    fn drop(&mut self) {
        if !self.ended {
            self.prefix.record(StoreOp::Abandon(self.key.clone()));
        }
    }
}

/// The artifact at a [`MemoryPrefix`], for a restore's reads; mirrors the command line's
/// store-backed reads (an empty prefix is `NotFound`, nested keys are not files).
struct MemoryArtifact(MemoryPrefix);

impl ArtifactFiles for MemoryArtifact {
    fn files(&self) -> std::io::Result<Vec<FileEntry>> {
        let objects = below(&self.0.bucket().objects, &self.0.root);
        if objects.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("no object exists under {}", self.0.url),
            ));
        }
        Ok(objects
            .into_iter()
            .filter(|(name, _)| !name.is_empty() && !name.contains('/'))
            .map(|(name, size)| FileEntry {
                name,
                size: Some(size),
            })
            .collect())
    }

    fn size(&self, name: &str) -> std::io::Result<u64> {
        self.0
            .object(name)
            .map(|d| d.len() as u64)
            .ok_or_else(|| std::io::ErrorKind::NotFound.into())
    }

    fn open(&self, name: &str) -> std::io::Result<Box<dyn Read + Send>> {
        let key = self.0.full(name);
        let mut bucket = self.0.bucket();
        bucket.journal.push(StoreOp::Open(key.clone()));
        let data = bucket.objects.get(&key).cloned().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{}/{name} does not exist", self.0.url),
            )
        })?;
        Ok(Box::new(std::io::Cursor::new(data)))
    }
}
