"""Harbor task folders used as test data: their own tests run in containers, not here."""

collect_ignore_glob = ["*"]
