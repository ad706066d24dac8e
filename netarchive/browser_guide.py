"""A Neo4j Browser guide built from the commented queries in cypher/, served on localhost.

Browser loads a guide with ``:play URL`` (``:guide URL`` in newer Browsers) when the server allows the
host (``browser.remote_content_hostname_whitelist``, set in docker/compose.yml) and the response carries
``Access-Control-Allow-Origin``, also on the CORS preflight (``OPTIONS``) that Browser's fetch triggers. Each slide is one file of cypher/: its comment lines as text, then the
``:param`` lines and the statement as runnable code blocks (click to put them into the editor).
"""
from __future__ import annotations

import html
from pathlib import Path

ORDER = (
    "checkpoint_layers", "strongest_synapses", "neuron_neighbourhood", "input_paths",
    "surviving_synapses", "isolated_neurons", "kernel_offsets", "skip_connections", "schema",
)
INTRO = (
    "netarchive stores each checkpoint of a pruned network as a layered graph: "
    "<code>(:Run)-[:HAS_CHECKPOINT]-&gt;(:Checkpoint {run, level, widths, ...})</code> and "
    "<code>(:Neuron {run, level, group, index, channel, y, x, bias, ...})-[:SYNAPSE {w, layer, ky, kx}]-&gt;(:Neuron)</code>, "
    "one synapse per surviving weight (a kernel weight carries its offset <code>ky</code>, <code>kx</code>), and "
    "<code>(:Neuron)-[:CONNECTION {kind}]-&gt;(:Neuron)</code> for residual additions, concatenations and flattens. "
    "Every query below takes parameters: run the <code>:param</code> block first (change the values to "
    "one of your runs: <code>MATCH (c:Checkpoint) RETURN c.run, c.level</code> lists them), then the query."
)


def default_cypher_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "cypher"


def guide_html(cypher_dir: Path) -> str:
    files = {path.stem: path for path in cypher_dir.glob("*.cypher")}
    names = [name for name in ORDER if name in files] + sorted(set(files) - set(ORDER))
    slides = [_slide("netarchive", f"<p>{INTRO}</p>", "<pre class=\"pre-scrollable code runnable\">"
                     "MATCH (c:Checkpoint) RETURN c.run AS run, c.level AS level, c.edges AS edges, "
                     "c.sparsity AS sparsity ORDER BY run, level</pre>")]
    for name in names:
        comments, params, statement = [], [], []
        for line in files[name].read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith("//"):
                (comments if not statement else statement).append(stripped[2:].strip() if not statement else line)
            elif stripped.startswith(":param"):
                params.append(stripped)
            elif stripped:
                statement.append(line)
        text = " ".join(comment for comment in comments if not comment.startswith("netarchive "))
        text = text.replace(" On the command line (either backend):", "")
        blocks = ""
        if params:
            blocks += f'<pre class="pre-scrollable code runnable">{html.escape(chr(10).join(params))}</pre>'
        blocks += f'<pre class="pre-scrollable code runnable">{html.escape(chr(10).join(statement))}</pre>'
        slides.append(_slide(name.replace("_", " "), f"<p>{html.escape(text)}</p>", blocks))
    return (
        '<article class="guide"><carousel class="deck container-fluid">'
        + "".join(slides)
        + "</carousel></article>\n"
    )


def _slide(title: str, text: str, code: str) -> str:
    return (
        '<slide class="row-fluid"><div class="col-sm-12">'
        f"<h3>{html.escape(title)}</h3>{text}{code}</div></slide>"
    )


def serve(content: str, port: int, host: str = "127.0.0.1"):
    """An HTTP server answering every GET with the guide and the CORS header Browser needs."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = content.encode()

    class Guide(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_OPTIONS(self):  # noqa: N802 - Browser's fetch sends headers that need a CORS preflight
            self.send_response(204)
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Methods", "GET, OPTIONS")
            self.send_header("Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers", "*"))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    return ThreadingHTTPServer((host, port), Guide)
