"""The ward dashboard page: every patient with NEWS2, trend and open alerts, live over SSE."""

from __future__ import annotations

import html
import json
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from medagent.monitor.api import MonitorDep

router = APIRouter(prefix="/monitor/dashboard", tags=["monitor-pages"])

ARROWS = {"up": "↑", "down": "↓", "flat": "→"}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{padding:.4rem .6rem;border-bottom:1px solid #ddd;
text-align:left}tr.emergency{background:#fdd}tr.urgent{background:#fed}tr.info{background:#eef}
.arrow{font-size:1.3em}#status{color:#888;font-size:.9em}
"""

_SCRIPT = """
const ward = document.body.dataset.ward;
const arrows = {up: "\\u2191", down: "\\u2193", flat: "\\u2192"};
function cell(text) {
  const td = document.createElement("td"); td.textContent = text ?? ""; return td;
}
function render(row) {
  const id = "p-" + row.patient_id;
  let tr = document.getElementById(id);
  if (!tr) {
    tr = document.createElement("tr"); tr.id = id;
    document.getElementById("rows").appendChild(tr);
  }
  tr.className = row.worst || "";
  tr.replaceChildren(cell(row.bed), cell(row.name || row.patient_id), cell(row.news2 ?? "–"),
    cell(row.band), cell(arrows[row.trend] || ""), cell(row.alerts), cell(row.updated));
  tr.children[4].className = "arrow";
}
const source = new EventSource("/monitor/events?ward=" + encodeURIComponent(ward));
source.addEventListener("patient", (e) => render(JSON.parse(e.data).row));
source.addEventListener("alert", (e) => {
  const a = JSON.parse(e.data).alert;
  document.getElementById("status").textContent = "alert " + a.status + ": " + a.summary;
});
source.onopen = () => { document.getElementById("status").textContent = "live"; };
source.onerror = () => { document.getElementById("status").textContent = "reconnecting…"; };
"""


def _row(row: dict[str, Any]) -> str:
    e = html.escape
    cells = [
        row.get("bed") or "",
        row.get("name") or row["patient_id"],
        row.get("news2") or "–",
        row.get("band") or "",
        ARROWS[row.get("trend") or "flat"],
        str(row.get("alerts", 0)),
        row.get("updated") or "",
    ]
    tds = "".join(
        f'<td class="arrow">{e(c)}</td>' if i == 4 else f"<td>{e(str(c))}</td>"
        for i, c in enumerate(cells)
    )
    return f'<tr id="p-{e(row["patient_id"])}" class="{e(row.get("worst") or "")}">{tds}</tr>'


def render_ward(ward: str, rows: list[dict[str, Any]]) -> str:
    """The ward page, server-rendered, with a little script that applies live updates."""
    e = html.escape
    body = "\n".join(_row(r) for r in rows)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ward {e(ward)} — medagent monitor</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body data-ward="{e(ward)}"><h1>Ward {e(ward)}</h1><p id="status">connecting…</p>
<table><thead><tr><th>Bed</th><th>Patient</th><th>NEWS2</th><th>Band</th><th>Trend</th>
<th>Open alerts</th><th>Last value</th></tr></thead><tbody id="rows">
{body}
</tbody></table>
<script id="initial" type="application/json">{e(json.dumps(rows, default=str))}</script>
<script>{_SCRIPT}</script></body></html>"""


@router.get("/{ward}", response_class=HTMLResponse, summary="Ward dashboard page")
def ward_page(monitor: MonitorDep, ward: str) -> HTMLResponse:
    """Every patient on the ward with NEWS2, trend arrow and open alerts; updates live."""
    return HTMLResponse(render_ward(ward, monitor.ward(ward)))


@router.get("", response_class=HTMLResponse, summary="Wards")
def wards_page(monitor: MonitorDep) -> HTMLResponse:
    """Links to each ward's dashboard."""
    items = "".join(
        f'<li><a href="/monitor/dashboard/{html.escape(w)}">{html.escape(w)}</a></li>'
        for w in monitor.wards()
    )
    return HTMLResponse(
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Wards</title></head>"
        f"<body><h1>Wards</h1><ul>{items}</ul></body></html>"
    )
