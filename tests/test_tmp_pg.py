from collections import Counter
from pathlib import Path
from digest.store import Store
from digest.deliver import send_issue, Lease
from tests.test_deliver import config, make_issue, subscribe, NOW
from tests.smtpserver import LocalSMTPServer

def test_send(pg_url: str, tmp_path: Path) -> None:
    s = Store.open(pg_url)
    subscribe(s, 30)
    issue = make_issue(s)
    with LocalSMTPServer() as server:
        r = send_issue(s, issue, config(tmp_path, server.port), now=NOW, lease=Lease(worker="w1", batch=7))
        print(r)
        assert r.sent == 30
        assert Counter(server.handler.recipients()) == Counter(f"reader{i}@example.org" for i in range(30))
    print(s.claims(issue.id))
    s.close()
