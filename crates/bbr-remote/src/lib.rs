//! The vocabulary for running commands as root on a VM.
//!
//! The [`Remote`] trait (one connection to one VM), what a command returns ([`Output`],
//! [`Exited`], the bounded [`Tail`] of a stream), why it could not run ([`RemoteError`]) and
//! how a failed root command reads ([`run_as_root_checked`]: `<stderr> - exit code N`), and
//! the command itself ([`RootCommand`]). No I/O, no SSH, no domain workflow: `bbr-ssh`
//! implements the trait, `bbr-core` runs its workflows through it, and a destination such as
//! `bbr-storage`'s SCP uses it without depending on the bbr domain.
//!
//! Where the cut lies. A [`RootCommand`] may carry a [`ScriptLaunch`] (a program run in its
//! own process group under a time limit, its group id in a pid file) which a transport can
//! perform without a shell; the launch and its shell text must say the same thing, so both
//! are built here by [`run_script`], and [`kill_script`] (which reads that pid file) sits
//! beside it. Neither knows what a release-author script is: `ScriptLaunch` holds only
//! strings and numbers. The commands of the workflows (`find` of the jobs' scripts, `mkdir`,
//! `du`, `tar`, `rm` of `/var/vcap/store/bbr-backup`, parsing a file list into artifact
//! entry names), script kinds, jobs and the artifact directory stay in `bbr_core`, which
//! re-exports everything here at its old paths (`bbr_core::remote`, `bbr_core::commands`).

mod command;
mod remote;

pub use command::{RootCommand, ScriptLaunch, kill_script, run_script, shell_quote};
pub use remote::{
    ExitFailure, Exited, HELD_OUTPUT_GRACE, HELD_OUTPUT_LIMIT, Output, OutputSink, Remote,
    RemoteError, RootCommandError, StdoutSink, Stream, Tail, run_as_root_checked,
};
