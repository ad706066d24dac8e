// Graph Data Science: drop the projected graph $graph (gds_project.cypher) and free its memory
// (nothing happens when there is none).
//   netarchive query cypher -f cypher/gds_drop.cypher
:param graph => 'netarchive';

CALL gds.graph.drop($graph, false) YIELD graphName
RETURN graphName AS dropped;
