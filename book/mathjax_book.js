/* The book's MathJax configuration (MathJax 2.7; book/ copies it to assets/mathjax/config/local/book.js and the
 * chapters load MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe,local/book). jupyter-server-mathjax ships
 * only the STIX-Web web fonts (not MathJax's TeX fonts, nor the image fonts): use them, as Jupyter does. */
MathJax.Hub.Config({
  "HTML-CSS": {
    availableFonts: [],
    preferredFont: null,
    webFont: "STIX-Web",
    imageFont: null,
    linebreaks: {automatic: true}
  }
});
MathJax.Ajax.loadComplete("[MathJax]/config/local/book.js");
