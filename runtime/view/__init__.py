"""`hud view`: a local web viewer over the trace store (jobs, runs, comparisons, export).

    hud view [DIR] [--port P] [--host 127.0.0.1]     serve .hud/runs (or DIR)
    hud view --export OUT                            the same pages as static files

The package is host side and reads only what `hud eval` wrote (`hud.eval.traces`):
`store` (validated ids, safe paths, cached jobs), `traceindex` (compact, per-trace
locked trace indexes), `jsontext` (bounded indented JSON), `scores` (pass@k,
comparisons, leaderboards), `events` (trace events as folded plain text), `pages`
(what each page shows), `render` (Jinja2, autoescaped; served and exported links),
`app` (Starlette + uvicorn), `export` (static files) and `beacon` (tells `hud eval` where
a running viewer is). Importing this package loads none of them: `hud eval` reads
`hud.view.beacon` without Starlette or Jinja2.
"""
