"""The catalogue as a web page, a third printer target beside torch (generated/layers.py) and
LaTeX (theory.pdf): ``sections`` builds each layer's content, ``figures`` its SVG curves,
``accuracy`` reads the certifier's data, ``build`` renders templates/site/ into out/site/."""
