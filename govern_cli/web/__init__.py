"""The review side: the read-only web app (``govern serve``), self-contained run reports with
charts (``govern report``), and notices rendered from the reviewed reason statements."""
