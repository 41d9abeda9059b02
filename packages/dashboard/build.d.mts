/** Bundles the console (src/ui) into dist/: index.html, app.js, app.css, favicon.svg. */
export function buildDashboard (options?: { minify?: boolean }): Promise<void>
