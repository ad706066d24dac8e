// Graph Data Science: the weakly connected components of the projected checkpoint $graph
// (gds_project.cypher), counted as `netarchive query components` counts them: an isolated neuron is a
// component of its own, giant is the size of the largest.
//   netarchive query cypher -f cypher/gds_wcc.cypher
:param graph => 'netarchive';

CALL gds.wcc.stream($graph) YIELD nodeId, componentId
WITH componentId, count(*) AS size
RETURN count(*) AS components, max(size) AS giant, sum(CASE WHEN size = 1 THEN 1 ELSE 0 END) AS isolated;
