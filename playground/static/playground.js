// The playground's script: send the page's forms without reloading, and redraw the chat
// whenever the emulator says something changed (a reply, another tab's message, a
// reminder). Without it every form still works, one page load at a time.
(() => {
  "use strict";
  const body = document.body;
  const who = body.dataset.who;
  const chat = body.dataset.chat;
  const status = document.getElementById("status");

  const scrollToEnd = () => {
    const list = document.getElementById("messages");
    if (list) list.lastElementChild?.scrollIntoView({ block: "end" });
  };

  let drawing = Promise.resolve();
  const redraw = () => {
    drawing = drawing.then(async () => {
      const query = new URLSearchParams({ who, chat });
      const response = await fetch(`/playground/messages?${query}`, { cache: "no-store" });
      if (!response.ok) return;
      const list = document.getElementById("messages");
      const fresh = document.createElement("div");
      fresh.innerHTML = await response.text();
      const next = fresh.firstElementChild;
      if (list && next && list.dataset.version !== next.dataset.version) {
        list.replaceWith(next);
        scrollToEnd();
      }
    }).catch(() => {});
    return drawing;
  };

  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-async")) return;
    event.preventDefault();
    const data = new FormData(form);
    if (event.submitter && event.submitter.name) {
      data.set(event.submitter.name, event.submitter.value);
    }
    const controls = form.querySelectorAll("button, input");
    controls.forEach((c) => { c.disabled = true; });
    body.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(form.action, {
        method: "POST",
        body: new URLSearchParams(data),
        headers: { "X-Playground": "fetch" },
      });
      const answer = await response.json();
      if (answer.reload) {
        window.location.assign(answer.url);
        return;
      }
      status.textContent = answer.notice || "";
      if (form.id === "composer" && response.ok) form.reset();
      await redraw();
    } catch (error) {
      status.textContent = "The playground did not answer. Is it still running?";
    } finally {
      controls.forEach((c) => { c.disabled = false; });
      body.removeAttribute("aria-busy");
      if (form.id === "composer") document.getElementById("text").focus();
    }
  });

  // Picking a person or a chat goes there at once.
  for (const id of ["who", "chat"]) {
    document.getElementById(id)?.addEventListener("change", (event) => {
      const where = new FormData(event.target.form);
      if (id === "who") where.delete("chat");
      window.location.assign(`/playground?${new URLSearchParams(where)}`);
    });
  }

  const events = new EventSource(`/playground/events?v=${body.dataset.version}`);
  events.onmessage = () => { redraw(); };
  window.addEventListener("pagehide", () => events.close());
  scrollToEnd();
})();
