// WebAuthn ceremonies of the portal (docs/webauthn.md): a button with
// data-ceremony="create" registers a key, one with "get" uses it. Each asks the
// gateway for its options (data-options), runs the browser's ceremony, posts the
// result (data-finish) and follows the answer's redirect; an error is shown in
// #webauthn-error. The challenge stays on the server (a ceremony cookie).
(function () {
  "use strict";
  var errorBox = document.getElementById("webauthn-error");
  var texts = errorBox.dataset;  // the page's language
  var working = document.getElementById("webauthn-working");

  function toBytes(b64url) {
    var b64 = b64url.replace(/-/g, "+").replace(/_/g, "/");
    while (b64.length % 4) { b64 += "="; }
    var raw = atob(b64);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out.buffer;
  }

  function toB64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function show(text) {
    if (working) { working.hidden = true; }
    errorBox.textContent = text;
    errorBox.hidden = false;
  }

  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok || data.error) { throw {shown: data.error || texts.failed}; }
        return data;
      });
    });
  }

  function creationOptions(o) {
    o.challenge = toBytes(o.challenge);
    o.user.id = toBytes(o.user.id);
    (o.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }

  function requestOptions(o) {
    o.challenge = toBytes(o.challenge);
    (o.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
    return o;
  }

  function credentialJSON(cred, response) {
    return {
      id: cred.id, rawId: toB64url(cred.rawId), type: cred.type,
      authenticatorAttachment: cred.authenticatorAttachment || undefined,
      clientExtensionResults: cred.getClientExtensionResults(),
      response: response
    };
  }

  function registrationJSON(cred) {
    var r = cred.response;
    return credentialJSON(cred, {
      clientDataJSON: toB64url(r.clientDataJSON),
      attestationObject: toB64url(r.attestationObject),
      transports: r.getTransports ? r.getTransports() : []
    });
  }

  function assertionJSON(cred) {
    var r = cred.response;
    return credentialJSON(cred, {
      clientDataJSON: toB64url(r.clientDataJSON),
      authenticatorData: toB64url(r.authenticatorData),
      signature: toB64url(r.signature),
      userHandle: r.userHandle ? toB64url(r.userHandle) : undefined
    });
  }

  function run(button) {
    var d = button.dataset;
    var creating = d.ceremony === "create";
    var start = {csrf_token: d.csrf};
    if (creating) {
      var name = document.getElementById("passkey-name");
      start.name = name ? name.value : "";
    }
    errorBox.hidden = true;
    if (working) { working.hidden = false; }
    button.disabled = true;
    post(d.options, start).then(function (data) {
      if (creating) {
        return navigator.credentials.create({publicKey: creationOptions(data.options)})
          .then(registrationJSON);
      }
      return navigator.credentials.get({publicKey: requestOptions(data.options)})
        .then(assertionJSON);
    }).then(function (credential) {
      return post(d.finish, {csrf_token: d.csrf, credential: credential, next: d.next});
    }).then(function (data) {
      window.location.assign(data.redirect);
    }).catch(function (err) {
      button.disabled = false;
      if (err && err.shown) { show(err.shown); }
      else if (err && err.name === "NotAllowedError") { show(texts.cancelled); }
      else { show(texts.failed); }
    });
  }

  var buttons = document.querySelectorAll("button[data-ceremony]");
  for (var i = 0; i < buttons.length; i++) {
    (function (button) {
      if (!window.PublicKeyCredential) {
        button.disabled = true;
        show(texts.unsupported);
        return;
      }
      button.addEventListener("click", function () { run(button); });
    })(buttons[i]);
  }
})();
