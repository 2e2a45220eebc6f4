// Sign in: check the token against the API, keep it for this tab, go where the user was.
import { ApiError, request, safeNext, setToken, clearToken } from "./api.js";
import { showError } from "./format.js";

const form = document.getElementById("login-form");
const input = document.getElementById("token");
const error = document.getElementById("token-error");
const button = document.getElementById("login-submit");

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = input.value.trim();
  showError(error, "");
  input.removeAttribute("aria-invalid");
  if (!token) {
    showError(error, "Enter a token.");
    input.setAttribute("aria-invalid", "true");
    input.focus();
    return;
  }
  button.disabled = true;
  setToken(token);
  try {
    // Any admin-only read will do: it proves the token is known and is an admin's.
    await request("/v1/jobs?limit=1", { redirectOn401: false });
    const next = new URLSearchParams(location.search).get("next");
    location.assign(safeNext(next));
  } catch (err) {
    clearToken();
    const message =
      err instanceof ApiError && err.status === 401
        ? "This token is unknown or revoked."
        : err instanceof ApiError && err.status === 403
          ? "This token is not an admin token."
          : err.message || "Sign-in failed.";
    showError(error, message);
    input.setAttribute("aria-invalid", "true");
    input.focus();
  } finally {
    button.disabled = false;
  }
});
