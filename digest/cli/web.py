"""CLI command for the readers' web side: `digest serve`."""

from __future__ import annotations

import ipaddress
import logging

import click

from digest.cli.app import App, console


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="Port."
)
@click.pass_obj
def serve(app: App, host: str, port: int) -> None:
    """Serve unsubscribe pages and the issue archive (put it behind your reverse proxy)."""
    import uvicorn  # imported here: only `serve` needs a web server

    from digest.web import create_app

    web_app = create_app(app.config, app.store)
    site = app.config.site.url
    if not _is_loopback(host):
        console.print(
            f"[yellow]warning:[/] listening on {host}, not only on this machine; "
            "serve the public side through a reverse proxy with TLS"
        )
    if not site.startswith("https://"):
        console.print(
            f"[yellow]warning:[/] [site].url {site} is not https; Gmail and Yahoo only "
            "honour one-click unsubscribe over https"
        )
    console.print(f"Serving {site} (unsubscribe, archive) on http://{host}:{port} (Ctrl-C stops)")
    level = logging.INFO if app.verbose else logging.WARNING
    uvicorn.run(
        web_app,
        host=host,
        port=port,
        log_level=logging.getLevelName(level).lower(),
        access_log=app.verbose > 0,
        server_header=False,
        proxy_headers=True,  # trust X-Forwarded-* from the proxy on 127.0.0.1 only
        forwarded_allow_ips="127.0.0.1",
    )
