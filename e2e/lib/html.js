// Tiny HTML helpers for the example OP and RP pages (escaping and one shared layout).

export function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** A whole page; `body` is trusted HTML (callers escape what they interpolate). */
export function page(title, body, { accent = '#0969da' } = {}) {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; color: #1f2328; background: #f6f8fa; margin: 0; }
  main { max-width: 40rem; margin: 8vh auto; padding: 1.5rem 2rem; background: #fff; border: 1px solid #d0d7de; border-top: 4px solid ${accent}; border-radius: 8px; }
  h1 { font-size: 1.3rem; margin: 0 0 .75rem; }
  label { display: block; margin: .5rem 0; }
  input { font: inherit; padding: .3rem .5rem; margin-left: .5rem; }
  button, .button { display: inline-block; font: inherit; padding: .4rem 1.1rem; border-radius: 6px; border: 1px solid ${accent}; background: ${accent}; color: #fff; cursor: pointer; text-decoration: none; }
  .muted { color: #59636e; font-size: .9rem; }
  .error { color: #cf222e; }
  code { font-size: .85rem; background: #eff2f5; padding: 0 .25rem; border-radius: 4px; word-break: break-all; }
  table { border-collapse: collapse; font-size: .9rem; } td { padding: .15rem .5rem; vertical-align: top; }
</style></head>
<body><main>${body}</main></body></html>`;
}
