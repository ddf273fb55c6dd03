// Small helpers shared by the pages: building elements and reading the API's error shape.

/** Creates an element with attributes (class, text, data-*, aria-*...) and children. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child !== null && child !== undefined));
  return node;
}

/** The API's error body {error: {code, message, details}}, or one made from the status. */
export async function readError(response) {
  try {
    const body = await response.json();
    if (body && body.error) return body.error;
  } catch {
    // Not JSON: a proxy's page, not the API's answer.
  }
  return { code: "http_error", message: `The server answered ${response.status}.` };
}

/** Whole dollars with thousands separators: 1154.33 -> "1,154". */
export function wholeDollars(value) {
  return Math.round(value).toLocaleString("en-US");
}
