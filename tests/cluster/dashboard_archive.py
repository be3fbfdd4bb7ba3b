"""The dashboard of an archiving node (docs/HTTP.md): /api/status carries the archive's
status and /metrics its lag and last upload, which move as the node uploads to a real
S3-compatible server on loopback (s3rver, tests/cluster/s3.py)."""
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import s3 as S  # noqa: E402
import dashboard_util as D  # noqa: E402

PREFIX = "dashboard-test/"
CALLS = 3


def test(cluster):
    s3 = S.S3rver(cluster).start()
    (n0,) = S.members(cluster, ["n0"])
    n0.extra_args += S.archive_args(s3, PREFIX, poll_ms=200)
    D.with_http(n0)
    started = time.time()
    n0.start()
    for i in range(CALLS):
        D.call(n0, "set", {"path": "k%d" % i, "value": i})
    S.wait_archived(n0)
    status = D.get_json(n0, "/api/status")
    a = status.get("archive")
    H.check(a and a["lag_updates"] == 0 and a["last_push_ms"] >= started * 1000,
            "/api/status shows the archive's upload and no lag: %s" % a)

    def uploaded():
        m = D.metrics(n0)
        last = D.value(m, "replog_archive_last_upload_timestamp_seconds")
        return (D.value(m, "replog_archive_lag_updates") == 0 and D.value(m, "replog_archive_lag_seconds") == 0
                and last is not None and started - 1 <= last <= time.time() + 1 and m)
    m = H.wait_until(uploaded, "/metrics to show the upload with no lag", timeout=10)
    H.check(D.value(m, "replog_archive_last_poll_timestamp_seconds") >= started - 1, "the last poll is shown")
    H.step("after %d calls, /api/status and /metrics show the archive's last upload (%.1f s after the start) "
           "and no lag" % (CALLS, D.value(m, "replog_archive_last_upload_timestamp_seconds") - started))


if __name__ == "__main__":
    H.run(test)
