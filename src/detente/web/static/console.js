/* Détente console: live updates, countdowns, FLASH alerts, keyboard, codebook previews.
 *
 * Everything here enhances server-rendered pages that work without it. The page names what to
 * refresh: <body data-live-url> (the page's live block) and data-strip-url (links and FLASH).
 * Events come from the operator stream (WS /api/v1/stream), authenticated by the session cookie.
 * User-visible words come from the page (#strings, data-* attributes): this file holds none.
 */
(function () {
  "use strict";
  var body = document.body;
  var strings = document.getElementById("strings");
  var baseTitle = document.title;
  var audio = null;
  var refreshTimer = null;
  var pendingRefresh = false;
  var lastHtml = {};

  function say(name, values) {
    var text = (strings && strings.dataset[name]) || "";
    Object.keys(values || {}).forEach(function (k) { text = text.split("%(" + k + ")s").join(values[k]); });
    return text;
  }

  function typeName(type) {
    try { return JSON.parse(strings.dataset.types || "{}")[type] || type; } catch (e) { return type; }
  }
  function stateName(state) {  /* a link's state in the page's language (UP, DEGRADED, DOWN) */
    try { return JSON.parse(strings.dataset.states || "{}")[state] || state; } catch (e) { return state; }
  }

  function toast(text, flash) {
    var box = document.getElementById("toasts");
    if (!box || !text) { return; }
    var item = document.createElement("div");
    item.className = "toast" + (flash ? " flash" : "");
    item.textContent = text;
    item.title = box.dataset.dismiss || "";
    item.addEventListener("click", function () { item.remove(); });
    box.appendChild(item);
    setTimeout(function () { item.remove(); }, flash ? 20000 : 8000);
  }

  /* ---- the phone's Menu: the header's tools behind one button (console.css shows it only on a phone) ---- */
  var menuButton = document.querySelector(".menu-toggle"), tools = document.getElementById("tools");
  function showMenu(open) {
    tools.classList.toggle("open", open);
    menuButton.setAttribute("aria-expanded", open ? "true" : "false");
  }
  if (menuButton && tools) {
    document.documentElement.classList.add("menu-js");
    menuButton.addEventListener("click", function () { showMenu(!tools.classList.contains("open")); });
    /* Escape closes it from the button or anywhere in it, and the focus goes back to the button. */
    menuButton.parentElement.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && tools.classList.contains("open")) { showMenu(false); menuButton.focus(); }
    });
  }

  /* ---- sound (WebAudio beeps; off until the operator turns it on, which unlocks audio) ---- */
  var soundButton = document.getElementById("sound-toggle");
  function soundOn() { return localStorage.getItem("detente-sound") === "on"; }
  function showSound() {
    if (!soundButton) { return; }
    soundButton.setAttribute("aria-pressed", soundOn() ? "true" : "false");
    soundButton.textContent = soundOn() ? soundButton.dataset.on : soundButton.dataset.off;
  }
  function toggleSound() {
    localStorage.setItem("detente-sound", soundOn() ? "off" : "on");
    showSound();
    if (soundOn()) { beep(1); }
  }
  function beep(times) {
    if (!soundOn()) { return; }
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      for (var i = 0; i < times; i++) {
        var osc = audio.createOscillator(), gain = audio.createGain(), t = audio.currentTime + i * 0.35;
        osc.frequency.value = 880; osc.connect(gain); gain.connect(audio.destination);
        gain.gain.setValueAtTime(0.25, t); gain.gain.setValueAtTime(0, t + 0.2);
        osc.start(t); osc.stop(t + 0.22);
      }
    } catch (e) { /* no audio device: the banner and title still show */ }
  }
  if (soundButton) { soundButton.addEventListener("click", toggleSound); showSound(); }

  /* ---- the node's time ----
     Deadlines are in the node's clock, which may be minutes off this browser's (within the agreement's
     tolerance). Each page and each refreshed strip carries the node's time when it was made
     (data-now, Unix ms); the difference to this browser's clock when it arrived is kept, and every
     countdown and the Now clock count in the node's time. */
  var skew = 0;  /* the node's clock minus this browser's, in ms */
  function nodeNow() { return Date.now() + skew; }
  function learnSkew(stamp, at) {
    var n = parseInt(stamp || "", 10);
    if (n > 0) { skew = n - at; body.setAttribute("data-skew", String(skew)); }
  }
  function pageArrived() {  /* this browser's time when the page's answer began to arrive */
    try {
      var nav = performance.getEntriesByType("navigation")[0];
      if (nav && nav.responseStart > 0) { return Date.now() - (performance.now() - nav.responseStart); }
    } catch (e) { /* no navigation timing: now will do */ }
    return Date.now();
  }
  learnSkew(body.dataset.now, pageArrived());

  /* ---- countdowns to acknowledgement deadlines ---- */
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function span(seconds) {
    var s = Math.abs(Math.floor(seconds)), h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return (h ? h + ":" + pad(m) : m) + ":" + pad(s % 60);
  }
  function tick() {
    var now = nodeNow();
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = (Date.parse(el.dataset.deadline) - now) / 1000;
      var late = left < 0 || el.hasAttribute("data-overdue");  /* the node said overdue: late, whatever is left */
      el.textContent = late ? say("late", { t: span(Math.min(left, 0)) }) : say("left", { t: span(left) });
      el.classList.toggle("urgent", late || left < 120);
      el.classList.toggle("late", late);
    });
  }

  /* ---- storage of this tab (sessionStorage), which a browser may refuse ---- */
  function load(key) {
    try { return JSON.parse(sessionStorage.getItem(key) || "null"); } catch (e) { return null; }
  }
  function store(key, value) {
    try { if (value === null) { sessionStorage.removeItem(key); } else { sessionStorage.setItem(key, JSON.stringify(value)); } }
    catch (e) { /* storage off or full: the page still works, only without memory across pages */ }
  }
  function who() { var el = document.querySelector(".who bdi"); return el ? el.textContent : ""; }

  /* ---- FLASH: banner (server-rendered strip), title, notice and sound ----
     A FLASH reaches the banner by arriving live, by arriving while the stream was down, or by going
     overdue at an office this operator is the alternate of. Whichever way it came, it is announced
     once (a notice, and three beeps if the sound is on) when the banner's count goes up: a live
     `message` event announces it at once and marks its id, so the refreshed banner does not announce
     it again. The ids seen are kept for the tab, per operator, so that another page of the console
     does not announce them again; the first page of a tab announces nothing (the banner shows it). */
  var flashKey = "detente-flash:" + who();
  var flashState = load(flashKey);  /* {ids: [...], count: n} of the last banner seen, or null */
  var flashReady = !!(flashState && Array.isArray(flashState.ids));
  var flashSeen = {};
  if (flashReady) { flashState.ids.forEach(function (id) { flashSeen[id] = true; }); } else { flashState = { ids: [], count: 0 }; }
  function bannerFlash(strip) {
    var items = [];
    strip.querySelectorAll("#flash-banner a[href^='/#m-']").forEach(function (a) {
      var sender = a.querySelector("bdi"), first = a.firstChild;
      var type = first && first.nodeType === 3 ? first.nodeValue.replace(/[\s·]+$/, "").trim() : "";
      items.push({ id: a.getAttribute("href").slice(4), from: sender ? sender.textContent : "", type: type,
                   to: a.dataset.to || "", alternate: a.hasAttribute("data-alternate") });
    });
    var line = strip.querySelector("#flash-banner > span");
    return { count: parseInt(strip.dataset.flashCount || "0", 10) || 0, items: items, line: line ? line.textContent : "" };
  }
  function announceFlash(text) {
    toast(text, true); beep(3);
    var alert = document.getElementById("flash-alert");
    if (alert) { alert.textContent = ""; setTimeout(function () { alert.textContent = text; }, 50); }  /* said again if the same */
  }
  function checkFlash(strip) {
    var now = bannerFlash(strip), before = {};
    flashState.ids.forEach(function (id) { before[id] = true; });
    var fresh = now.items.filter(function (m) { return !flashSeen[m.id]; });
    var added = now.items.filter(function (m) { return !before[m.id]; }).length;
    var unlisted = Math.max(0, now.count - flashState.count - added);  /* more waiting than the banner's new lines */
    var n = fresh.length + unlisted;
    if (flashReady && now.count > 0 && n) {
      /* Why it came: a new one (or one overdue elsewhere, that falls to this operator as the alternate);
         several: how many are new, and how many wait in all. */
      var one = fresh.length === 1 && !unlisted ? fresh[0] : null;
      var alt = fresh.filter(function (m) { return m.alternate; }).length;
      var text = now.line;
      if (one) {
        text = say(one.alternate ? "flashAlternate" : "flash", { from: one.from, to: one.to, type: one.type });
      } else if (n > 1) {
        text = say(alt ? "flashNewAlternate" : "flashNew", { n: n, alt: alt, total: now.count });
      }
      announceFlash(text);
    }
    now.items.forEach(function (m) { flashSeen[m.id] = true; });
    flashState = { ids: now.items.map(function (m) { return m.id; }), count: now.count };
    flashReady = true;
    store(flashKey, flashState);
  }
  function flashTitle() {
    var strip = document.querySelector("#strip .strip-inner");
    var n = strip ? parseInt(strip.dataset.flashCount || "0", 10) : 0;
    document.title = n > 0 ? "⚠ FLASH (" + n + ") · " + baseTitle : baseTitle;
    if (strip) { checkFlash(strip); }
  }

  /* ---- the session ends: what was being typed is kept ----
     When the stream closes with 4401 (the session ended: its time ran out, a logout elsewhere, a new
     password) or a refresh lands on the login page, the page goes to the login page, which comes back
     here. Before it goes, what was typed into each form is kept in this tab's sessionStorage, and put
     back into the same form (same action, type and code) when this page opens again for the same
     operator; it is deleted then, or when another operator signs in on the tab.
     A form sent is kept the same way until the next page shows where it went: a page of the console
     (it reached the node: deleted) or the login page (its session had ended: kept, to be put back on
     the page it was typed on, where the login page comes back to). */
  var DRAFT_KEY = "detente-draft";
  var TEXTS = "textarea, input[type=text], input:not([type])";
  /* The page the login page comes back to: a form's page (not the address it posts to), without one-time notices. */
  function here() {
    var query = location.search.replace(/^\?/, "").split("&").filter(function (part) {
      return part && !/^(sent|status_sent|acked|declined|translated|certified|disputed|blank_text|blank_note|blank_reason|fragment)=/.test(part);
    }).join("&");
    return location.pathname.replace(/^(\/channel\/[^/]+)\/send$/, "$1") + (query ? "?" + query : "");
  }
  function postForms() { return Array.prototype.slice.call(document.querySelectorAll("form[method=post]")); }
  function formKey(form) {
    var type = form.querySelector("input[type=hidden][name=type]"), code = form.querySelector("input[type=hidden][name=code]");
    return [form.getAttribute("action"), type ? type.value : "", code ? code.value : ""].join("|");
  }
  function typedIn(form) {
    return Array.prototype.some.call(form.querySelectorAll(TEXTS),
      function (el) { return el.value.trim() !== "" && el.value !== el.defaultValue; });
  }
  function draftOf(form) {
    var values = [];
    Array.prototype.forEach.call(form.elements, function (el) {
      if (el.name && el.name !== "csrf" && ["hidden", "file", "submit", "button"].indexOf(el.type) < 0) { values.push([el.name, el.value]); }
    });
    return { key: formKey(form), values: values };
  }
  function saveDrafts() {
    var forms = postForms().filter(typedIn).map(draftOf);
    if (forms.length) { store(DRAFT_KEY, { who: who(), path: here(), forms: forms }); }
  }
  document.addEventListener("submit", function (e) {
    var form = e.target, action = form.getAttribute("action") || "";
    if (!who() || !form.matches("form[method=post]") || action === "/login" || action === "/logout") { return; }
    var draft = draftOf(form);
    if (draft.values.length) { store(DRAFT_KEY, { who: who(), path: here(), forms: [draft], sent: true }); }
  });
  function settleSent() {  /* where did the form sent from the last page go? */
    var saved = load(DRAFT_KEY);
    if (!saved || !saved.sent) { return; }
    var back = document.querySelector(".error-page .back-to-draft");
    if (back && saved.who === who()) {  /* refused before the node read it (too large, say): kept, and the way back shown */
      saved.sent = false;
      store(DRAFT_KEY, saved);
      back.setAttribute("href", saved.path);
      back.hidden = false;
      return;
    }
    if (who()) { store(DRAFT_KEY, null); return; }  /* to the node: nothing to put back */
    if (document.querySelector(".login-form")) { saved.sent = false; store(DRAFT_KEY, saved); }  /* kept for after login */
  }
  function restoreDrafts() {
    var saved = load(DRAFT_KEY);
    if (!saved || !who() || !Array.isArray(saved.forms)) { return; }
    if (saved.who !== who()) { store(DRAFT_KEY, null); return; }  /* never another operator's draft */
    /* kept until the page it was typed on opens again (an error page at its form's address is not that page) */
    if (saved.path !== here() || document.querySelector(".error-page")) { return; }
    store(DRAFT_KEY, null);
    var first = null;
    saved.forms.forEach(function (draft) {
      var form = postForms().filter(function (f) { return formKey(f) === draft.key; })[0];
      if (!form) { return; }
      (draft.values || []).forEach(function (pair) {
        var el = form.querySelector("[name='" + String(pair[0]).replace(/['\\]/g, "") + "']");
        if (!el || el.type === "hidden" || el.type === "file") { return; }
        el.value = pair[1];
        if (!first && el.matches(TEXTS) && el.value) { first = el; }
      });
      var box = form.closest("details");
      if (box) { box.open = true; }
      if (form.classList.contains("code-form")) { fill(form); }
    });
    if (first) { first.focus(); }
  }
  function sessionEnded() {
    /* Back to this page after login (not to the fragment whose refresh found the session ended). */
    status("expired");
    saveDrafts();
    location.href = "/login?expired=1&next=" + encodeURIComponent(here());
  }

  /* ---- live refresh of the page's live block and the strip ----
     A refresh waits while the operator works in the block: typing in a field, or an open form
     (the status form, a decline) that has the focus or holds what they changed. After a refresh the
     focus goes back to the same control (by id, else by what it is within the nearest element with an
     id: the message, the form), and the forms that were open are open again. */
  function changed(form) {
    return Array.prototype.some.call(form.elements, function (el) {
      if (el.tagName === "SELECT") {
        var first = Array.prototype.findIndex.call(el.options, function (o) { return o.defaultSelected; });
        return el.selectedIndex !== Math.max(first, 0);
      }
      return ["hidden", "file", "submit", "button"].indexOf(el.type) < 0 && el.value !== el.defaultValue;
    });
  }
  function busy(region) {
    var el = document.activeElement;
    if (!region) { return false; }
    if (el && region.contains(el) && el.matches("textarea, input, select")) { return true; }
    return Array.prototype.some.call(region.querySelectorAll("details[open]"), function (box) {
      var form = box.querySelector("form");
      return !!form && ((el && box.contains(el)) || changed(form));
    });
  }
  function what(el) {  /* what a control is, whatever its place: kind, target, action */
    var form = el.form || el.closest("form"), box = el.closest("details");
    return [el.tagName, el.getAttribute("href") || "", el.getAttribute("data-action") || "",
            form ? form.getAttribute("action") : "", el.getAttribute("name") || "", box ? box.id : ""].join("|");
  }
  function focusKey(target) {
    var el = document.activeElement;
    if (!el || el === body || !target.contains(el)) { return null; }
    if (el.id) { return { id: el.id }; }
    var anchor = el.parentElement.closest("[id]");
    if (!anchor || !target.contains(anchor)) { anchor = target; }
    var same = Array.prototype.filter.call(anchor.querySelectorAll(el.tagName), function (x) { return what(x) === what(el); });
    return { anchor: anchor.id, what: what(el), tag: el.tagName, nth: same.indexOf(el) };
  }
  function refocus(key) {
    if (!key) { return; }
    var el = key.id ? document.getElementById(key.id) : null, anchor = key.anchor && document.getElementById(key.anchor);
    if (!el && anchor) {
      var same = Array.prototype.filter.call(anchor.querySelectorAll(key.tag), function (x) { return what(x) === key.what; });
      el = same[key.nth] || same[0] || (anchor.tabIndex >= 0 ? anchor : null);  /* gone: its message, if still there */
    }
    if (el) { el.focus({ preventScroll: true }); }
  }
  function swap(url, target) {
    return fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } }).then(function (r) {
      var at = Date.now();
      if (r.redirected && r.url.indexOf("/login") >= 0) { sessionEnded(); return; }
      if (!r.ok) { return; }
      return r.text().then(function (html) {
        var stamp = / data-now="(\d+)"/.exec(html);
        if (stamp) { learnSkew(stamp[1], at); }
        var kept = html.replace(/ data-now="\d+"/g, "");
        if (kept === lastHtml[url]) { return; }  /* nothing changed: keep the DOM (and screen readers) quiet */
        lastHtml[url] = kept;
        var focused = focusKey(target);
        var open = Array.prototype.map.call(target.querySelectorAll("details[open][id]"), function (d) { return d.id; });
        /* A table scrolled sideways (the links table, to reach "Our status") stays where it was scrolled. */
        var scrolled = Array.prototype.map.call(target.querySelectorAll(".table-scroll"), function (t) { return t.scrollLeft; });
        target.innerHTML = html;
        open.forEach(function (id) { var box = document.getElementById(id); if (box) { box.open = true; } });
        Array.prototype.forEach.call(target.querySelectorAll(".table-scroll"), function (t, i) {
          if (i < scrolled.length) { t.scrollLeft = scrolled[i]; }
        });
        refocus(focused);
        tick(); flashTitle(); bindPage(target);
      });
    }).catch(function () { /* the next event or reconnect refreshes again */ });
  }
  function refresh() {
    var live = document.getElementById("live"), strip = document.getElementById("strip");
    if (live && body.dataset.liveUrl) {
      if (busy(live)) { pendingRefresh = true; } else { swap(body.dataset.liveUrl, live); }
    }
    if (strip && body.dataset.stripUrl) { swap(body.dataset.stripUrl, strip); }
  }
  function soon() { clearTimeout(refreshTimer); refreshTimer = setTimeout(refresh, 150); }
  function whenFree() {
    setTimeout(function () {
      if (pendingRefresh && !busy(document.getElementById("live"))) { pendingRefresh = false; refresh(); }
    }, 50);
  }
  document.addEventListener("focusout", whenFree);
  document.addEventListener("toggle", whenFree, true);  /* a form closed: what waited comes now */
  /* Link tests change no state most of the time, and send no event: the strip and the links are read again
     at least this often (the clock's offset, the last test and its round trip, the last error). */
  setInterval(refresh, 20000);

  /* ---- the event stream ---- */
  var conn = document.getElementById("conn");
  function status(kind) {
    if (!conn) { return; }
    conn.className = "conn " + kind;
    conn.textContent = conn.dataset[kind] || "";
    body.setAttribute("data-connection", kind);
  }
  function onEvent(ev) {
    if (ev.event === "hello") { return; }
    if (ev.event === "message") {
      /* A FLASH is announced by the banner that the refresh brings (`checkFlash`): a batch of forty
         is one notice and three beeps, not forty of each (QA). The others are counted for a moment. */
      if (ev.precedence !== "FLASH") { arrived(ev); }
    } else if (ev.event === "acknowledged" || ev.event === "declined") {
      toast(say(ev.event === "acknowledged" ? "acked" : "declined", { id: "…" + (ev.id || "").slice(-8), by: ev.by || "" }));
    } else if (ev.event === "link") {
      toast(say("link", { peer: (ev.peer || "").toUpperCase(), state: stateName(ev.state) }));
    }
    soon();
  }
  var arrivals = [], arrivalTimer = null;
  function arrived(ev) {
    arrivals.push(ev);
    if (!arrivalTimer) { arrivalTimer = setTimeout(sayArrivals, 300); }
  }
  function sayArrivals() {
    var batch = arrivals;
    arrivals = []; arrivalTimer = null;
    var one = batch.length === 1 ? batch[0] : null;
    toast(one ? say("arrived", { prec: one.precedence, from: one.from }) : say("arrivedMany", { n: batch.length }), false);
    beep(batch.some(function (ev) { return ev.precedence === "IMMEDIATE"; }) ? 1 : 0);
  }
  var backoff = 1000;
  function connect() {
    if (!body.dataset.stream || !window.WebSocket) { return; }
    status("connecting");
    var ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + body.dataset.stream);
    ws.onopen = function () { backoff = 1000; status("live"); soon(); };
    ws.onmessage = function (m) { try { onEvent(JSON.parse(m.data)); } catch (e) { /* ignore a malformed event */ } };
    ws.onclose = function (e) {
      if (e.code === 4401) {
        sessionEnded();
        return;
      }
      status("lost");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
  }

  /* ---- keyboard ---- */
  /* j/k go through the messages: full cards, and the links of the short rows (Enter opens one). */
  var ITEMS = "article.msg, li.row-in a.row-link";
  function messages() { return Array.prototype.slice.call(document.querySelectorAll(ITEMS)); }
  function current() {
    var el = document.activeElement;
    return el && el.closest ? el.closest("article.msg") || (el.matches("li.row-in a.row-link") ? el : null) : null;
  }
  function move(step) {
    var list = messages(); if (!list.length) { return; }
    var at = list.indexOf(current());
    var next = at < 0 ? (step > 0 ? 0 : list.length - 1) : Math.max(0, Math.min(list.length - 1, at + step));
    list[next].focus(); list[next].scrollIntoView({ block: "nearest" });
  }
  /* An acknowledged (or declined) message leaves Now (or stays answered on its channel): the page that comes back
     puts the focus on the message after it (else before it), so that `j` goes on from there. */
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches || !form.matches(".ack-form, .decline-form")) { return; }
    var cards = Array.prototype.slice.call(document.querySelectorAll("article.msg"));
    var at = cards.indexOf(form.closest("article.msg"));
    var after = at < 0 ? null : (cards[at + 1] || cards[at - 1] || null);
    var next = form.querySelector("input[name=next]");
    if (next && after) { next.value = next.value.split("#")[0] + "#" + after.id; }
  }, true);
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) { return; }
    var t = e.target;
    if (t && t.matches && t.matches("input, textarea, select, [contenteditable]")) { return; }
    var msg = current(), help = document.getElementById("help");
    switch (e.key) {
      case "j": move(1); break;
      case "k": move(-1); break;
      case "a":
        var ack = msg && msg.querySelector(".ack-form");
        if (ack) { ack.requestSubmit ? ack.requestSubmit() : ack.submit(); } else { return; }
        break;
      case "d":
        var dec = msg && msg.querySelector("details.decline");
        if (dec) { dec.open = true; dec.querySelector("textarea").focus(); } else { return; }
        break;
      case "c":
        var first = document.querySelector("#compose-form select, #compose-form input:not([type=hidden]), #compose-form textarea");
        if (first) { first.focus(); first.scrollIntoView({ block: "center" }); } else { return; }
        break;
      case "g": location.href = "/"; break;
      case "s": if (soundButton) { toggleSound(); } break;
      case "?": if (help) { help.open ? help.close() : help.showModal(); } break;
      default: return;
    }
    e.preventDefault();
  });

  /* ---- per-page behaviour, re-bound after each live swap ---- */
  function fill(form) {
    form.querySelectorAll(".preview .text[data-template]").forEach(function (el) {
      var text = el.dataset.template;
      form.querySelectorAll("[data-param]").forEach(function (input) {
        var v = input.value.trim();
        if (v && input.dataset.kind === "time") { v = v.replace("T", " ").replace(/Z$/, "").slice(0, 16) + " UTC"; }
        if (v) { text = text.split("{" + input.dataset.param + "}").join(v); }
      });
      el.textContent = text;
    });
  }
  /* Evidence files go straight to POST /api/v1/evidence (the session's CSRF token in the header);
     the item it answers is added to the JSON list of the form's evidence field. How each file went is
     said under the file input, one line a file, in the form's flow: a floating notice covered the form's
     Send button. A file's name is an isolate (any script); the node's error is English, left to right. */
  function upload(input) {
    var target = document.getElementById(input.dataset.evidenceFor);
    var token = document.querySelector("meta[name=csrf-token]").content;
    var status = document.getElementById(input.id + "-status");
    status.replaceChildren();  /* a new choice of files: what the last choice did is done with */
    Array.prototype.forEach.call(input.files, function (file) {
      var line = status.appendChild(document.createElement("span"));
      function say(word, error) {  /* error: the node's words (English), or null */
        var name = document.createElement("bdi");
        name.textContent = file.name;
        line.className = error === null ? "" : "failed";
        line.replaceChildren(word + " ", name);
        if (error !== null) {
          var said = document.createElement("bdi");
          said.dir = "ltr"; said.lang = "en"; said.textContent = error;
          line.append(" — ", said);
        }
      }
      var data = new FormData();
      data.append("file", file);
      say(input.dataset.busy, null);
      fetch("/api/v1/evidence?name=" + encodeURIComponent(file.name), {
        method: "POST", body: data, credentials: "same-origin", headers: { "X-CSRF-Token": token }
      }).then(function (r) { return r.json().then(function (j) { return [r.ok, j]; }); }).then(function (res) {
        if (!res[0]) { say(input.dataset.failed, String(res[1].detail || "")); return; }
        var list = [];
        try { list = JSON.parse(target.value || "[]"); } catch (e) { list = []; }
        if (!Array.isArray(list)) { list = []; }
        list.push(res[1].evidence);
        target.value = JSON.stringify(list, null, 1);
        say(input.dataset.done, null);
      }).catch(function (e) { say(input.dataset.failed, String(e)); });
    });
    input.value = "";
  }
  function bindPage(root) {
    root.querySelectorAll("input[data-evidence-for]").forEach(function (input) {
      input.addEventListener("change", function () { upload(input); });
    });
    root.querySelectorAll("select[data-autosubmit]").forEach(function (sel) {
      sel.addEventListener("change", function () { sel.form.submit(); });
    });
    root.querySelectorAll(".code-form").forEach(function (form) {
      form.addEventListener("input", function () { fill(form); });
      fill(form);
    });
  }

  document.documentElement.classList.add("js");
  bindPage(document);
  settleSent();
  restoreDrafts();
  tick(); flashTitle();
  setInterval(tick, 1000);
  var invalid = document.querySelector("[aria-invalid=true]");
  var target = location.hash && document.getElementById(location.hash.slice(1));
  var newest = document.querySelector(".thread article.msg:last-of-type");
  if (document.activeElement && document.activeElement.matches("textarea, input")) { /* a draft put back: stay there */ }
  else if (invalid) { invalid.focus(); } else if (target && target.tabIndex >= 0) { target.focus(); }
  else if (newest && !location.hash) { newest.scrollIntoView({ block: "nearest" }); }
  /* After Acknowledge or Decline the focus is on the next message, maybe far below the notice at the
     top (QA: it was off screen, under a tall banner): it is said in the corner too. */
  var done = document.querySelector("#acked-notice, #declined-notice");
  if (done && target) { toast(done.textContent.replace(/\s+/g, " ").trim(), false); }
  window.addEventListener("hashchange", function () {
    var el = document.getElementById(location.hash.slice(1));
    if (el && el.tabIndex >= 0) { el.focus(); }
  });
  connect();
})();

/* The clock in the Now heading ([data-clock]), kept current in the node's time (as the countdowns
   are: this browser's clock corrected by body[data-skew], ms): UTC, the party's local time
   (data-offset, minutes) and the date-time group.
   The Solar Hijri date of a Persian page is written again only once the local day has changed. */
(function () {
  "use strict";
  var clock = document.querySelector("[data-clock]");
  if (!clock) { return; }
  var months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
  var offset = parseInt(clock.dataset.offset || "0", 10) * 60000;
  var utc = clock.querySelector("[data-clock-utc]"), local = clock.querySelector("[data-clock-local]");
  var dtg = clock.querySelector("[data-clock-dtg]"), hijri = clock.querySelector(".hijri");
  var shownDay = local ? local.textContent.slice(0, 10) : "";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function day(d) { return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()); }
  function hm(d) { return pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes()); }
  function show() {
    var now = new Date(Date.now() + (parseFloat(document.body.getAttribute("data-skew") || "0") || 0));
    var here = new Date(now.getTime() + offset);
    if (utc) {
      utc.setAttribute("datetime", now.toISOString());
      utc.firstElementChild.textContent = day(now) + " " + hm(now) + ":" + pad(now.getUTCSeconds()) + "Z";
    }
    if (local) { local.textContent = day(here) + " " + hm(here); }
    if (dtg) {
      dtg.textContent = pad(now.getUTCDate()) + hm(now).replace(":", "") + "Z" + months[now.getUTCMonth()] +
        String(now.getUTCFullYear()).slice(-2);
    }
    if (hijri && day(here) !== shownDay) {
      shownDay = day(here);
      try {
        hijri.textContent = new Intl.DateTimeFormat("fa-IR-u-ca-persian-nu-latn",
          { timeZone: "UTC", day: "2-digit", month: "long", year: "numeric" }).format(here);
      } catch (e) { /* no Persian calendar in this browser: the date stays as the page gave it */ }
    }
  }
  show();
  setInterval(show, 1000);
})();

/* The header of a printed page (.print-head, shown only in print): the page's full address, and the
   node's time as it is printed (this browser's clock corrected by body[data-skew]); without this
   script, the path and the time the page was made. */
(function () {
  "use strict";
  var url = document.querySelector("[data-print-url]"), time = document.querySelector("[data-print-time]");
  if (url) { url.textContent = location.href; }
  if (!time) { return; }
  window.addEventListener("beforeprint", function () {
    var now = new Date(Date.now() + (parseFloat(document.body.getAttribute("data-skew") || "0") || 0));
    time.setAttribute("datetime", now.toISOString());
    time.textContent = now.toISOString().slice(0, 19).replace("T", " ") + "Z";
  });
})();
