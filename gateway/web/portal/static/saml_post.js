// The SAML HTTP-POST binding: send the signed response on to the service provider at
// once (the page's Continue button does the same when scripts are off).
document.getElementById("saml-post").submit();
