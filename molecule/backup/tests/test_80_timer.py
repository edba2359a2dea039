"""A timer whose last run is days old starts a backup as soon as it starts (Persistent=true)."""

from conftest import SERVICE, TIMER, journal, published_sets, wait_until

STAMP = f"/var/lib/systemd/timers/stamp-{TIMER}"


def test_missed_run_fires_at_start(db):
    before = set(published_sets(db))
    assert db.run("systemctl stop %s", TIMER).rc == 0
    assert db.run("touch -d '3 days ago' %s", STAMP).rc == 0
    assert db.run("systemctl start %s", TIMER).rc == 0

    def new_sets() -> list[str]:
        """Return the sets published since the test began, once the backup service has finished."""
        new = [n for n in set(published_sets(db)) - before if not n.startswith(".")]
        state = db.run("systemctl show --property ActiveState --value %s", SERVICE).stdout.strip()
        return new if state != "activating" else []

    new = wait_until(new_sets, 300)
    assert len(new) == 1, journal(db, SERVICE)
    assert db.run("systemctl show --property Result --value %s", SERVICE).stdout.strip() == "success"
