//! One job whose artifact holds 1,000,000 empty files (100 directories of 10,000) backs up
//! and restores end to end against a real sshd VM: the metadata bbr writes for it (~85 MB)
//! must read back (issue 10, item 1), and the restore script must see every file.

mod support;

use std::time::Instant;
use support::*;

const DIRS: usize = 100;
const PER_DIR: usize = 10_000;
const FILES: usize = DIRS * PER_DIR;

#[test]
fn a_million_files_in_one_job_back_up_and_restore() {
    let h = Harness::new();
    // The VM's store on tmpfs (in the VM's private mount namespace, gone with it): on this
    // machine's disk each file creation costs ~0.5 ms, and the VM creates the million files
    // twice (the backup script, then `tar -x` at restore) and removes them twice, which
    // made the test take ~10 minutes of file system time rather than bbr time.
    let mount = h
        .vm
        .ssh("sudo -n mount -t tmpfs -o size=4g,nr_inodes=4m,mode=0755 bbr-million /var/vcap/store")
        .expect("ssh");
    assert!(mount.status.success(), "mount tmpfs: {mount:?}");
    // One perl process creates the files in seconds; a shell loop would take minutes.
    h.script("bosh", Script::Backup, &format!(
            "perl -e 'for my $d (0..{last_dir}) {{ my $p = sprintf(\"%s/d%02d\", $ENV{{BBR_ARTIFACT_DIRECTORY}}, $d); mkdir $p or die \"$p: $!\"; for my $f (0..{last_file}) {{ my $n = sprintf(\"%s/f%07d\", $p, $d * {PER_DIR} + $f); open(my $h, \">\", $n) or die \"$n: $!\"; close $h; }} }}'",
            last_dir = DIRS - 1,
            last_file = PER_DIR - 1,
        ));
    h.script("bosh", Script::Restore, "mkdir -p /var/vcap/sys\nfind \"$BBR_ARTIFACT_DIRECTORY\" -type f | wc -l > /var/vcap/sys/restored-count\ntest -f \"$BBR_ARTIFACT_DIRECTORY/d42/f0420042\" && echo yes > /var/vcap/sys/sample-present");

    let started = Instant::now();
    let backup = h.bbr(&["backup"]);
    let backup_took = started.elapsed();
    assert_eq!(backup.code(), 0, "{}", backup.show());
    assert!(
        backup.stdout().contains("Backup created of"),
        "{}",
        backup.show()
    );
    let artifact = h.artifact_in(h.work.path());
    let metadata = std::fs::read_to_string(artifact.join("metadata")).expect("metadata");
    assert!(
        metadata.len() > 80_000_000,
        "metadata is {} bytes",
        metadata.len()
    );
    let checksums = metadata
        .lines()
        .filter(|l| l.starts_with("      ./d"))
        .count();
    assert_eq!(checksums, FILES);
    // What restore reads: the metadata as the artifact directory parses it.
    let empty = sha256_hex(b"");
    assert!(
        metadata.contains(&format!("      ./d42/f0420042: {empty}\n")),
        "a sample file's checksum is missing"
    );
    drop(metadata);

    // Nothing of the backup may remain on the VM: the restore gets everything from the
    // local artifact.
    let left =
        h.vm.ssh("test ! -e /var/vcap/store/bbr-backup && echo clean")
            .expect("ssh");
    assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "clean");
    let started = Instant::now();
    let restore = h.bbr(&["restore", "--artifact-path", &artifact.to_string_lossy()]);
    let restore_took = started.elapsed();
    assert_eq!(restore.code(), 0, "{}", restore.show());
    let count = h.vm.read("sys/restored-count").expect("restore script ran");
    assert_eq!(count.trim(), FILES.to_string());
    assert_eq!(
        h.vm.read("sys/sample-present").expect("sample").trim(),
        "yes"
    );
    eprintln!(
        "{FILES} files: backup {:.1}s, restore {:.1}s",
        backup_took.as_secs_f64(),
        restore_took.as_secs_f64()
    );
}
