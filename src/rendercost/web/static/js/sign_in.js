import { api, showError } from "./common.js";

const form = document.getElementById("sign-in-form");
form.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("sign-in-error", null);
  const input = document.getElementById("api-key");
  try {
    await api("POST", "/v1/session", { api_key: input.value.trim() });
    input.value = "";
    window.location.assign("/playground");
  } catch (error) {
    showError("sign-in-error", error);
  }
});
