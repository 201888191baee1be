// medagent pages: a little progressive enhancement, no build step.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (field && navigator.clipboard) navigator.clipboard.writeText(field.value);
});
document.addEventListener("change", (event) => {
  // Submitting an override as soon as a choice changes saves a click.
  const select = event.target.closest("form.override select");
  if (select) select.form.requestSubmit();
});
