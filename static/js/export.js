/**
 * export.js: small enhancements for the export page and the transcript; both work without it.
 *
 *   export page   the BOM box is only offered for CSV; empty fields are left out of the
 *                 download URL (a plain GET to /api/export) so it stays readable
 *   transcript    [data-action="print"] opens the print dialog
 *
 * No customer text is handled here.
 */

const form = document.getElementById("export-form");

function syncBom() {
  const bom = document.getElementById("export-bom");
  if (!form || !bom) return;
  const isCsv = form.elements.format.value === "csv";
  bom.disabled = !isCsv;
  bom.closest("label")?.setAttribute("aria-disabled", String(!isCsv));
}

if (form) {
  form.addEventListener("change", (event) => {
    if (event.target.name === "format") syncBom();
  });
  form.addEventListener("submit", () => {
    const blanks = [...form.elements].filter(
      (field) => field.name && !field.disabled && (field.type === "text" || field.type === "tel"
        || field.type === "date" || field.tagName === "SELECT") && field.value.trim() === "",
    );
    for (const field of blanks) field.disabled = true;
    // The browser has read the form once this task ends; give the fields back for the next export.
    setTimeout(() => { for (const field of blanks) field.disabled = false; syncBom(); }, 0);
  });
  syncBom();
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action='print']");
  if (button) window.print();
});
