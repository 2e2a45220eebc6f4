// What an operator can do on the job page: cancel it (POST /v1/jobs/{id}/cancel) and promote
// its model to a deployment (PUT /v1/deployments/{name}).
import { ApiError, request } from "./api.js";
import { el, showError } from "./format.js";
import { renderHeader } from "./job-header.js";
import { $, jobId, state } from "./job-page.js";

export function wireCancel() {
  const button = $("cancel-job");
  button.addEventListener("click", async () => {
    if (!window.confirm(`Cancel job ${jobId}? A running job stops within one training step.`)) return;
    button.disabled = true;
    try {
      state.job = (await request(`/v1/jobs/${encodeURIComponent(jobId)}/cancel`, { method: "POST" })).data;
      renderHeader();
    } catch (err) {
      showError($("page-error"), `Cancel failed: ${err.message}`);
      button.disabled = false;
    }
  });
}

export function wirePromote() {
  const form = $("promote-form");
  const input = $("deployment-name");
  const error = $("deployment-name-error");
  const result = $("promote-result");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    showError(error, "");
    input.removeAttribute("aria-invalid");
    result.hidden = true;
    const name = input.value.trim();
    if (!name) {
      showError(error, "Enter a deployment name.");
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    $("promote-submit").disabled = true;
    try {
      const { data } = await request(`/v1/deployments/${encodeURIComponent(name)}`, { method: "PUT", json: { job_id: jobId } });
      result.replaceChildren(
        `Promoted: ${data.name} now serves version ${data.current_version}. `,
        el("a", { href: "/deployments" }, "See deployments"),
      );
      result.hidden = false;
    } catch (err) {
      const message = err instanceof ApiError && err.fieldErrors.length ? err.fieldErrors.map((e) => e.msg).join("; ") : err.message;
      showError(error, message);
      input.setAttribute("aria-invalid", "true");
    } finally {
      $("promote-submit").disabled = false;
    }
  });
}
