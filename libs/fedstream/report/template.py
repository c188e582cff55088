"""The report's page. Kept as a Python string (not a package data file) so it ships with the code in any
install; ``string.Template`` because the page only fills in blanks — the loops live in ``page``."""

from __future__ import annotations

from string import Template

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>fedstream report: $federation_id</title>
<style>
  body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 900px; color: #1d3557; }
  h1 { margin-bottom: 0.2em; }
  .meta { color: #555; margin-top: 0; }
  .summary { display: flex; gap: 1em; flex-wrap: wrap; margin: 1.5em 0; }
  .summary div { background: #f1faee; border-radius: 6px; padding: 0.6em 1em; }
  .summary b { display: block; font-size: 1.4em; }
  section { margin: 2em 0; }
  figure { margin: 0; }
  figure img { width: 100%; height: auto; border: 1px solid #ddd; }
  p.none { background: #fff3cd; border-left: 4px solid #e9c46a; padding: 0.8em 1em; }
  table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
  th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left; }
</style>
</head>
<body>
<h1>$project_name</h1>
<p class="meta">federation <code>$federation_id</code> · $state · report generated $generated_at</p>
<div class="summary">$summary</div>
<section id="convergence"><h2>Convergence</h2>$convergence</section>
<section id="privacy"><h2>Privacy: ε over rounds</h2>$privacy</section>
<section id="health"><h2>Participant health</h2>$health</section>
<section id="latency"><h2>Round latency</h2>$latency</section>
<section id="rounds"><h2>Rounds</h2>$rounds_table</section>
</body>
</html>
""")
