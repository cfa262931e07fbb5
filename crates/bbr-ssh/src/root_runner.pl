# bbr's root command runner: started once per VM as `sudo -n perl -e <this>`, it runs
# the shell commands bbr sends on stdin, as many at once as asked, and sends back their output
# and exit status, so that each command costs a fork and an exec instead of an SSH session,
# a shell and a sudo. Only perl-base (Essential on Debian and Ubuntu stemcells) is used.
#
# Requests (stdin):  "C <id> <length>\n" followed by <length> bytes of shell, run by /bin/sh -c;
#                    "S <id> <length>\n" followed by <length> bytes of NUL-separated fields:
#                    time limit in seconds (0: none), pid file, script path, then NAME=value
#                    variables. The script runs in a process group of its own, whose id is
#                    written to the pid file (removed at the end); when the limit strikes the
#                    group gets TERM, KILL 10 s later, and the status is 124 (as coreutils
#                    `timeout -k 10` does).
# Replies (stdout):  "O <id> <length>\n<bytes>" stdout, "E <id> <length>\n<bytes>" stderr,
#                    "X <id> <status>\n" once both pipes are closed and the command was reaped
#                    (status 128+N when killed by signal N); "H <id> <status>\n" instead when
#                    the command was reaped but a process it left running still held a pipe
#                    open $grace seconds (set by the bootstrap) after the last output, or
#                    $held_limit seconds after the exit whatever came since: those
#                    pipes are closed unread. Output is sent as it is read, never gathered.
# The first line out is "bbr-runner 1". On EOF of stdin no more commands are taken; the runner
# leaves once the running ones have finished (it never kills them).
use strict;
$SIG{PIPE} = 'IGNORE';
my ($EINTR, $ENOENT, $EAGAIN) = (4, 2, 11);
# A child's exit interrupts the select below, so it is reported without polling.
$SIG{CHLD} = sub { };
binmode STDIN;
binmode STDOUT;

# Seconds on a monotonic clock with centisecond steps (Time::HiRes is not in perl-base),
# falling back to the wall clock's whole seconds.
sub now {
    if (open(my $f, '<', '/proc/uptime')) {
        my ($up) = split ' ', scalar <$f>;
        return $up if defined $up && $up =~ /^[0-9.]+$/;
    }
    return time;
}

sub out {
    my ($bytes) = @_;
    while (length $bytes) {
        my $n = syswrite(STDOUT, $bytes);
        if (!defined $n) { next if $! == $EINTR || $! == $EAGAIN; exit 3; }
        substr($bytes, 0, $n) = '';
    }
}

my (%pipe, %open_pipes, %pid_of, %pid_file, %deadline, %kill_at, %timed_out, %status, %held_until, %held_end);
sub start {
    my ($kind, $id, $payload) = @_;
    my ($limit, $pid_file, $path, @env);
    ($limit, $pid_file, $path, @env) = split /\0/, $payload, -1 if $kind eq 'S';
    my ($out_r, $out_w, $err_r, $err_w);
    unless (pipe($out_r, $out_w) && pipe($err_r, $err_w)) {
        my $text = "bbr-runner: pipe: $!";
        out("E $id " . length($text) . "\n${text}X $id 127\n");
        return;
    }
    my $pid = fork;
    if (!defined $pid) {
        my $text = "bbr-runner: fork: $!";
        out("E $id " . length($text) . "\n${text}X $id 127\n");
        return;
    }
    if ($pid == 0) {
        $SIG{PIPE} = 'DEFAULT';
        open(STDIN, '<', '/dev/null');
        open(STDOUT, '>&', $out_w);
        open(STDERR, '>&', $err_w);
        if ($kind eq 'S') {
            setpgrp(0, 0);
            for (@env) {
                my ($name, $value) = split /=/, $_, 2;
                $ENV{$name} = $value;
            }
            exec { $path } $path;
            print STDERR "bbr-runner: failed to run command '$path': $!\n";
            exit($! == $ENOENT ? 127 : 126);
        }
        exec('/bin/sh', '-c', $payload);
        print STDERR "bbr-runner: exec /bin/sh: $!";
        exit 127;
    }
    if ($kind eq 'S') {
        # Also set from here, so that the group exists before its id is handed out.
        setpgrp($pid, $pid);
        if (open(my $f, '>', $pid_file)) {
            print $f "$pid\n";
            close $f;
        }
        $pid_file{$id} = $pid_file;
        $deadline{$id} = now() + $limit if $limit > 0;
    }
    close $out_w;
    close $err_w;
    $pipe{fileno $out_r} = [$id, 'O', $out_r];
    $pipe{fileno $err_r} = [$id, 'E', $err_r];
    $open_pipes{$id} = 2;
    $pid_of{$id} = $pid;
}

# Notes the exit status of every command whose process has ended, and reports each of those
# whose pipes are closed (X), or still held open by a process it left running $grace seconds
# after the last output (H: the pipes are closed unread).
sub reap {
    for my $id (keys %pid_of) {
        if (!defined $status{$id}) {
            my $pid = $pid_of{$id};
            next unless waitpid($pid, 1) == $pid;
            my $status = $? & 127 ? 128 + ($? & 127) : $? >> 8;
            $status = 124 if delete $timed_out{$id};
            $status{$id} = $status;
            unlink $pid_file{$id} if defined $pid_file{$id};
            delete $pid_file{$id};
            delete $deadline{$id};
            delete $kill_at{$id};
            if ($open_pipes{$id}) {
                $held_end{$id} = now() + $held_limit;
                $held_until{$id} = now() + $grace;
            }
        }
        my $tag = 'X';
        if ($open_pipes{$id}) {
            next if now() < $held_until{$id};
            for my $fd (grep { $pipe{$_}[0] == $id } keys %pipe) {
                close $pipe{$fd}[2];
                delete $pipe{$fd};
            }
            $tag = 'H';
        }
        out("$tag $id $status{$id}\n");
        delete $status{$id};
        delete $held_until{$id};
        delete $held_end{$id};
        delete $pid_of{$id};
        delete $open_pipes{$id};
    }
}

out("bbr-runner 1\n");
my $in = '';
my $reading = 1;
while ($reading || %pid_of) {
    my $want = '';
    vec($want, fileno(STDIN), 1) = 1 if $reading;
    vec($want, $_, 1) = 1 for keys %pipe;
    # A command whose pipes closed just before it became a zombie is reaped when its exit
    # interrupts the select, or (should the signal slip in before the select) on a short poll.
    my $waiting = grep { !$open_pipes{$_} && !defined $status{$_} } keys %pid_of;
    my $wait = $waiting ? 0.002 : undef;
    # A command whose output stays open after its exit is noticed by the same signal; should
    # it slip in, by a poll once a second.
    $wait = 1 if !defined $wait && grep { !defined $status{$_} } keys %pid_of;
    if (%deadline || %kill_at || %held_until) {
        my ($next) = sort { $a <=> $b } (values %deadline, values %kill_at, values %held_until);
        my $left = $next - now();
        $left = 0.01 if $left < 0.01;
        $wait = $left if !defined $wait || $left < $wait;
    }
    my $ready = select(my $got = $want, undef, undef, $wait);
    if ($ready > 0) {
        if ($reading && vec($got, fileno(STDIN), 1)) {
            my $n = sysread(STDIN, $in, 65536, length $in);
            if (!$n) {
                $reading = 0 unless !defined $n && ($! == $EINTR || $! == $EAGAIN);
            }
            while ($in =~ /\A([CS]) (\d+) (\d+)\n/ && length($in) >= length($&) + $3) {
                my ($kind, $id, $len, $head) = ($1, $2, $3, length $&);
                my $payload = substr($in, $head, $len);
                substr($in, 0, $head + $len) = '';
                start($kind, $id, $payload);
            }
        }
        for my $fd (keys %pipe) {
            next unless vec($got, $fd, 1);
            my ($id, $tag, $fh) = @{$pipe{$fd}};
            my $n = sysread($fh, my $data, 65536);
            if ($n) {
                out("$tag $id $n\n$data");
                if (exists $held_until{$id}) {
                    my $until = now() + $grace;
                    $until = $held_end{$id} if $until > $held_end{$id};
                    $held_until{$id} = $until;
                }
            } elsif (defined $n || !($! == $EINTR || $! == $EAGAIN)) {
                close $fh;
                delete $pipe{$fd};
                $open_pipes{$id}--;
            }
        }
    }
    my $now = (%deadline || %kill_at) ? now() : 0;
    for my $id (keys %deadline) {
        next if $now < $deadline{$id};
        delete $deadline{$id};
        kill 'TERM', -$pid_of{$id};
        $timed_out{$id} = 1;
        $kill_at{$id} = $now + 10;
    }
    for my $id (keys %kill_at) {
        next if $now < $kill_at{$id};
        delete $kill_at{$id};
        kill 'KILL', -$pid_of{$id};
    }
    reap();
}
