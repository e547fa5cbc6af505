#!/bin/sh
# A throw-away Request Tracker 5 for the RT connector's integration test (Debian 12 packages).
#
#   rt_server.sh install          install RT 5 with its SQLite driver and standalone server (root)
#   rt_server.sh run DIR PORT     new SQLite database in DIR, an auth token for root written to
#                                 DIR/token, then RT's standalone server on 127.0.0.1:PORT in the
#                                 foreground (stop it with SIGTERM)
#
# Nothing outside DIR is written: RT_SITE_CONFIG and RT_SITE_CONFIG_DIR point RT at a site
# configuration in DIR instead of /etc/request-tracker5.
set -eu

RT_LIB=/usr/share/request-tracker5/lib
RT_SERVER=/usr/share/request-tracker5/libexec/rt-server

case "${1:-}" in
install)
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        request-tracker5 rt5-db-sqlite rt5-standalone
    ;;
run)
    dir=$2
    port=$3
    mkdir -p "$dir/conf.d" "$dir/mason" "$dir/sessions"
    cat >"$dir/RT_SiteConfig.pm" <<CONFIG
Set(\$rtname, 'ticket-enrich-test');
Set(\$Organization, 'ticket-enrich-test');
Set(\$DatabaseType, 'SQLite');
Set(\$DatabaseName, '$dir/rt.db');
Set(\$WebDomain, '127.0.0.1');
Set(\$WebPort, $port);
Set(\$WebPath, '');
Set(\$WebBaseURL, 'http://127.0.0.1:$port');
Set(\$LogToSTDERR, 'error');
Set(\$LogToSyslog, undef);
Set(\$LogToFile, undef);
# Autoreplies go to a file in the temp dir, not to sendmail.
Set(\$MailCommand, 'testfile');
Set(\$MasonDataDir, '$dir/mason');
Set(\$MasonSessionDir, '$dir/sessions');
1;
CONFIG
    export RT_SITE_CONFIG="$dir/RT_SiteConfig.pm" RT_SITE_CONFIG_DIR="$dir/conf.d"
    /usr/sbin/rt-setup-database-5 --action init --skip-create </dev/null
    perl -I"$RT_LIB" -MRT -e '
        RT::LoadConfig(); RT::Init();
        my $user = RT::User->new(RT->SystemUser);
        $user->Load("root") or die "no root user\n";
        my ($ok, $msg, $token) = RT::AuthToken->new(RT->SystemUser)->Create(
            Owner => $user->Id, Description => "ticket-enrich tests");
        $ok or die "auth token: $msg\n";
        print $token;
    ' >"$dir/token.tmp"
    mv "$dir/token.tmp" "$dir/token"
    exec "$RT_SERVER" --server Standalone --host 127.0.0.1 --port "$port"
    ;;
*)
    echo "usage: $0 install | run DIR PORT" >&2
    exit 2
    ;;
esac
